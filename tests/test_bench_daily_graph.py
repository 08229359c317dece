"""The daily-graph benchmark (bench/daily_graph.py) on a tiny day: what its report promises.

One run of ``--quick`` (a generated day of 4,000 quotes and about 200 fills through the real
daily job) is shared by every test; no test asserts how fast anything is.
"""

import importlib.util

import pytest

from bench import daily_graph

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    folder = tmp_path_factory.mktemp("daily-graph-bench")
    out = folder / "benchmarks.md"
    out.write_text("# Benchmarks\n\nanother benchmark's section\n")
    png = folder / "daily-graph.png" if HAS_MATPLOTLIB else None
    outcome = daily_graph.run_benchmark(daily_graph.QUICK_SIZES, out=out, png=png, data_dir=folder / "data",
                                        work_dir=folder / "work", log=lambda line: None)
    return outcome, out, png


def test_the_report_section_is_written_and_the_rest_of_the_file_kept(quick):
    _, out, _ = quick
    text = out.read_text()
    assert "another benchmark's section" in text
    section = text[text.index(daily_graph.START_MARKER):text.index(daily_graph.END_MARKER)]
    assert "| 4k quotes, " in section
    for stage in daily_graph.STAGES:
        assert f"{stage} s" in section


def test_every_stage_took_time(quick):
    outcome, _, _ = quick
    (measurement,) = outcome["measurements"]
    assert measurement.day.quotes == 4_000 and measurement.day.fills > 0
    for stage in daily_graph.STAGES:
        assert measurement.stages[stage] > 0, stage


def test_the_stages_add_up_to_the_end_to_end_time(quick):
    outcome, _, _ = quick
    (measurement,) = outcome["measurements"]
    assert sum(measurement.stages.values()) == pytest.approx(measurement.wall_s, rel=1e-6)
    assert measurement.result["steps_s"] < measurement.result["run_s"] < measurement.wall_s


def test_dbt_nodes_are_attributed_by_what_they_build(quick):
    outcome, _, _ = quick
    (measurement,) = outcome["measurements"]
    stage_of = {n["node"]: n["stage"] for n in measurement.result["dbt_split"]["nodes"]}
    assert stage_of["model.cei.recon_breaks"] == "reconciliation"
    assert stage_of["model.cei.positions"] == "dbt"
    assert stage_of["model.cei.stg_quotes"] == "dbt"
    tests = {stage for node, stage in stage_of.items() if node.startswith("test.")}
    assert tests == {"checks", "reconciliation"}


def test_peak_memory_of_the_run_and_of_its_process_tree(quick):
    outcome, _, _ = quick
    (measurement,) = outcome["measurements"]
    assert measurement.result["tree_peak_mib"] >= measurement.result["peak_mib"] > 0


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib comes with the bench extra (pip install -e '.[bench]')")
def test_stacked_bars_written(quick):
    _, _, png = quick
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_overlapping_dbt_nodes_share_the_time_they_overlap():
    shares, covered = daily_graph.split_shared_time([(0.0, 2.0, "dbt"), (1.0, 3.0, "checks"), (5.0, 6.0, "dbt")])
    assert covered == pytest.approx(4.0)
    assert shares == pytest.approx({"dbt": 1.0 + 0.5 + 1.0, "checks": 0.5 + 1.0})


def test_sizes_are_quotes_then_fills():
    assert daily_graph.parse_day_sizes("10M:1M,1M:100k") == [(1_000_000, 100_000), (10_000_000, 1_000_000)]
    with pytest.raises(ValueError):
        daily_graph.parse_day_sizes("1M")
