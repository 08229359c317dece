"""Smoke test of the fills' validation benchmark (bench/validation_executions.py) on about 2,000 fills.

The real machinery, each engine in its own subprocess: every engine must fail exactly the rows
planted for each rule of executions.yaml, and the report must say so. Great Expectations comes
with the ``bench`` extra; without it the benchmark runs the other engines and says why.
"""

from __future__ import annotations

import csv

import pytest

from bench import validation_executions as bench

FILLS = 2_000


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench-executions")
    out = tmp / "benchmarks.md"
    out.write_text("# Benchmarks\n\nSomeone else's section.\n")
    outcome = bench.run_benchmark([FILLS], repeat=1, out=out, data_dir=tmp / "data", work_dir=tmp / "work",
                                  log=lambda *_: None)
    return outcome, out


def test_one_fault_per_rule_is_planted_on_distinct_rows(smoke):
    outcome, _ = smoke
    (result,) = outcome["results"]
    day = result.data
    with (day.landing_root / day.business_date.isoformat() / "executions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == day.rows
    assert sum(1 for r in rows if r["price"] == "") == day.planted["required_fields"]
    assert sum(1 for r in rows if r["side"] == "HOLD") == day.planted["allowed_values_side"]
    assert {rule.name for rule in outcome["plan"].rules} == set(day.planted)


def test_every_engine_fails_exactly_the_planted_rows(smoke):
    outcome, _ = smoke
    assert outcome["disagreements"] == []
    (result,) = outcome["results"]
    assert {"cei", "cei_same", "cei_checks", "pandera"} <= set(result.runs)
    for rule in outcome["plan"].same:
        found = result.agreement[rule.name]
        assert set(found.values()) == {result.data.expected(rule.name)}, rule.name


def test_the_report_section_is_written_and_the_rest_of_the_file_kept(smoke):
    _, out = smoke
    text = out.read_text()
    assert "Someone else's section." in text
    section = text[text.index(bench.START_MARKER):text.index(bench.END_MARKER)]
    assert "| `unique_exec_id` | `unique: [exec_id]` |" in section
    assert "| CEI: checks only, data in warehouse |" in section
