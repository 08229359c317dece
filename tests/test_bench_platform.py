"""The platform benchmarks (issue 8) at their --quick sizes: what their report sections promise.

- ``bench.platform_scale``: Definitions load and the incident sensor's tick at 100 checks, on
  SQLite and PostgreSQL instance storage, against the per-check-key baseline;
- ``bench.incident_writing``: reports through the template and through the LLM (the local
  Messages API server with a fixed delay);
- ``bench.detection_latency``: a real daemon with a 2 s sensor interval, failed check to stored
  incident and to the local Slack server.

Each runs once for the whole file (a module fixture); no test asserts how fast anything is.
"""

import importlib.util

import pytest

from bench import detection_latency, incident_writing, platform_scale

OTHER_SECTION = "another benchmark's section\n"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def section(out, module) -> str:
    text = out.read_text()
    assert OTHER_SECTION in text, "a benchmark rewrote more than its own section"
    return text[text.index(module.START_MARKER):text.index(module.END_MARKER)]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    path = tmp_path_factory.mktemp("platform-bench") / "benchmarks.md"
    path.write_text("# Benchmarks\n\n" + OTHER_SECTION)
    return path


# ------------------------------------------------------------------------ platform scale


@pytest.fixture(scope="module")
def scale(out, tmp_path_factory):
    png = out.parent / platform_scale.DEFAULT_PNG_NAME
    return platform_scale.run_benchmark(platform_scale.QUICK_SIZES, platform_scale.STORAGES, repeat=1, failure_ticks=1,
                                        out=out, png=png, work_dir=tmp_path_factory.mktemp("scale"), log=lambda line: None)


def test_scale_reports_the_definitions_load_and_every_tick_per_storage(scale, out):
    text = section(out, platform_scale)
    assert "| checks | assets | Definitions load s |" in text
    assert "| 100 | 10 |" in text
    assert "| 100 | sqlite |" in text
    # PostgreSQL is part of the test environment (tests/throwaway_postgres.py): not measuring it is a failure.
    assert "| 100 | postgres |" in text
    assert "PostgreSQL not measured" not in text
    assert sorted(tick.storage for tick in scale["ticks"]) == ["postgres", "sqlite"]
    if HAS_MATPLOTLIB:
        assert f"]({platform_scale.DEFAULT_PNG_NAME})" in text
        assert (out.parent / platform_scale.DEFAULT_PNG_NAME).stat().st_size > 0
    load = scale["loads"][100]
    assert load["checks"] == 100 and load["assets"] == 10
    assert load["load_s"] > 0 and load["dagster_import_s"] > 0


def test_the_sensor_reads_the_backlog_once_then_only_what_is_new(scale):
    for tick in scale["ticks"]:
        assert tick.first_events == 100  # one passing evaluation per check
        assert tick.idle_events == 0
        assert tick.failure_events == tick.failures_new == [platform_scale.NEW_FAILURES]
        # At 100 checks the 10 failing assets are the one pipeline of 10, each downstream of the one
        # before: the failures of a date cascade into one incident (cei_assets.incidents.grouping).
        assert tick.incidents == len(tick.failure_ticks_s) == 1, tick.storage
        assert min(tick.first_tick_s, *tick.idle_ticks_s, *tick.failure_ticks_s) > 0


def test_the_baseline_queries_every_check_and_finds_its_execution(scale):
    for tick in scale["ticks"]:
        assert tick.naive_found == 100
        assert tick.naive_s > 0 and tick.naive_ratio > 0
    assert scale["summary"]["naive_over_idle_tick"]


# ------------------------------------------------------------------------ incident writing


@pytest.fixture(scope="module")
def writing(out, tmp_path_factory):
    return incident_writing.run_benchmark(incident_writing.QUICK_REPORTS, incident_writing.QUICK_DELAY_S, out=out,
                                          work_dir=tmp_path_factory.mktemp("writing"), log=lambda line: None)


def test_writing_reports_both_paths_with_tokens(writing, out):
    text = section(out, incident_writing)
    assert "| template | 3 |" in text
    assert "| LLM (0.1 s server) | 3 |" in text
    template, llm = writing["measured"]["template"], writing["measured"]["llm"]
    assert len(template.seconds) == len(llm.seconds) == incident_writing.QUICK_REPORTS
    assert min(template.seconds) > 0
    assert template.input_tokens == [] or set(template.input_tokens) == {0}


def test_every_llm_report_was_the_servers_answer_after_its_delay(writing):
    llm = writing["measured"]["llm"]
    assert llm.fallbacks == 0
    assert min(llm.seconds) >= incident_writing.QUICK_DELAY_S  # the server's fixed delay is inside each
    assert min(llm.input_tokens) > 0
    assert set(llm.output_tokens) == {420}  # what the local server reports for every answer
    assert writing["summary"]["input_tokens_per_report"] > 0


# ------------------------------------------------------------------------ detection latency


@pytest.fixture(scope="module")
def latency(out, tmp_path_factory):
    return detection_latency.run_benchmark(detection_latency.QUICK_RUNS, detection_latency.QUICK_INTERVAL_S, out=out,
                                           png=out.parent / detection_latency.DEFAULT_PNG_NAME,
                                           work_dir=tmp_path_factory.mktemp("latency"), log=lambda line: None)


def test_latency_reports_each_run_from_evaluation_to_store_and_slack(latency, out):
    text = section(out, detection_latency)
    assert "| run (partition) |" in text and "| **median** |" in text
    if HAS_MATPLOTLIB:
        assert f"]({detection_latency.DEFAULT_PNG_NAME})" in text
    detections = latency["detections"]
    assert [d.partition for d in detections] == ["2026-01-06", "2026-01-07"]
    for d in detections:
        assert d.to_store_s > 0
        assert d.slack_at >= d.stored_at  # the alert is sent once the incident is stored
    assert latency["summary"]["target_met"] is None  # the target is the default interval's, not 2 s
