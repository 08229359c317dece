"""Smoke test of the validation benchmark (bench/validation.py) on 20,000 quotes.

It runs the real machinery, each engine in its own subprocess, into a temporary folder: the
report must carry every engine and every engine must find the same failing rows, the planted
null bids included. Great Expectations and pandera come with the ``bench`` extra; without them
their parts are skipped with the reason.
"""

from __future__ import annotations

import csv
import importlib.util
import re

import pytest

from bench import quotes_data, validation

ROWS = 20_000
HAS_GE = importlib.util.find_spec("great_expectations") is not None
HAS_PANDERA = importlib.util.find_spec("pandera") is not None
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
NEEDS_BENCH_EXTRA = "not installed: pip install -c constraints.txt -e '.[bench]'"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "benchmarks.md"
    out.write_text("# Benchmarks\n\nSomeone else's section.\n")
    png = tmp / "benchmarks-validation.png" if HAS_MATPLOTLIB else None
    outcome = validation.run_benchmark(
        [ROWS], repeat=1, out=out, png=png, data_dir=tmp / "data", work_dir=tmp / "work", quiet_wait_s=0,
        log=lambda *_: None,
    )
    return outcome, out, png


def test_quotes_day_is_in_the_spec_format_and_cached(tmp_path):
    day = quotes_data.quotes_day(ROWS, cache_dir=tmp_path)
    assert not day.reused and day.rows == ROWS and sum(day.rows_by_vendor.values()) == ROWS
    assert [p.name for p in day.files] == ["quotes_primary.csv", "quotes_secondary.csv"]
    with day.files[0].open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ts", "symbol", "bid", "ask", "bid_size", "ask_size"]
    assert re.fullmatch(r"2026-01-15T\d\d:\d\d:\d\d\.\d{3}Z", rows[1][0])
    assert sum(1 for r in rows[1:] if r[2] == "") * 2 == day.planted["null_bid"]
    assert all(n >= 2 for n in day.planted.values())  # at least one of each fault per vendor file
    assert quotes_data.quotes_day(ROWS, cache_dir=tmp_path).reused


def test_every_engine_runs_and_agrees(smoke):
    outcome, out, _ = smoke
    assert outcome["disagreements"] == []
    (result,) = outcome["results"]
    planted_nulls = result.data.planted["null_bid"]
    null_rules = [r.name for r in outcome["plan"].same if r.type == "null_tolerance"]
    assert null_rules, "quotes.yaml lost its null rule: the benchmark can no longer prove the engines checked"
    engines = [e for e in validation.ENGINES if e in result.runs]
    assert {"cei", "cei_same", "cei_checks"} <= set(engines)
    for engine in engines:
        assert result.runs[engine][0].result["counts"][null_rules[0]] == planted_nulls, engine
    report = out.read_text()
    assert report.startswith("# Benchmarks\n\nSomeone else's section.\n")  # the rest of the file stays
    assert report.count(validation.START_MARKER) == 1 and report.count(validation.END_MARKER) == 1
    for label in ("CEI: ingest + all rules", "CEI: checks only, data in warehouse"):
        assert label in report
    assert "every engine agrees" in report


@pytest.mark.skipif(not HAS_PANDERA, reason=f"pandera {NEEDS_BENCH_EXTRA}")
def test_pandera_ran(smoke):
    outcome, out, _ = smoke
    assert "pandera" in outcome["results"][0].runs
    assert "| pandera (pandas) |" in out.read_text()


@pytest.mark.skipif(not HAS_GE, reason=f"great_expectations {NEEDS_BENCH_EXTRA}")
def test_great_expectations_ran(smoke):
    outcome, out, _ = smoke
    run = outcome["results"][0].runs["ge"][0]
    assert set(run.result["counts"]) == set(outcome["plan"].same_names)
    assert "| Great Expectations (pandas) |" in out.read_text()


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason=f"matplotlib {NEEDS_BENCH_EXTRA}")
def test_plot_written(smoke):
    _, _, png = smoke
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_replaces_only_the_section(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(f"# B\n\nbefore\n\n{validation.START_MARKER}\nold\n{validation.END_MARKER}\n\nafter\n")
    validation.write_section(path, f"{validation.START_MARKER}\nnew\n{validation.END_MARKER}\n")
    assert path.read_text() == f"# B\n\nbefore\n\n{validation.START_MARKER}\nnew\n{validation.END_MARKER}\n\nafter\n"


def test_rules_are_translated_from_quotes_yaml():
    plan = validation.plan_rules(validation.load_quote_rules())
    assert plan.rules and plan.same
    assert {r.name for r in plan.same} | set(plan.cei_only) == {r.name for r in plan.rules}
    assert validation.parse_sizes("1M,20k,3000000") == [20_000, 1_000_000, 3_000_000]
