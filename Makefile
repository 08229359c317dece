# The README's two commands: `make demo` (install, generate, run, report) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test install ui services clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@echo "installing CEI and its pinned dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install -c constraints.txt -e ".[dev]" >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(STAMP)

# The benchmarks' baselines and tools (Great Expectations, matplotlib, pyinstrument): the tests of
# bench/ run them, the demo does not need them.
$(BENCH_STAMP): $(STAMP)
	@echo "installing the benchmarks' baselines into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -c constraints.txt -e ".[dev,bench]" >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(BENCH_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cei demo

# Two workers, each taking whole test files (their module fixtures build once): most of a test's
# time is one Python thread driving Dagster, dbt or a subprocess, so two share the two cores well.
# TEST_WORKERS=0 runs the suite in this one process.
TEST_WORKERS ?= 2

test: $(BENCH_STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

ui: $(STAMP)
	$(BIN)/cei ui

# dagster-daemon + dagster-webserver (and CEI_CELERY_WORKERS Celery workers) in the foreground;
# logs in $$CEI_HOME/logs, Ctrl-C stops them all. See docs/deployment.md.
services: $(STAMP)
	$(BIN)/python bin/cei-services

clean:
	rm -rf .cei dbt_project/target dbt_project/logs
