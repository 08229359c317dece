"""Smoke test of the fills' validation benchmark (bench/validation_executions.py) on about 2,000 fills.

The real machinery, each engine in its own subprocess: every engine must fail exactly the rows
planted for each rule of executions.yaml, and the report must say so. Great Expectations comes
with the ``bench`` extra; without it the benchmark runs the other engines and says why.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools

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


# What each fault of bench.FAULTS leaves in a row of the written file (given the row before it and
# the next day's date). Read back from the file rather than taken from the generator, so that a
# generator planting two faults on one row, or missing one, is caught.
FAULT_SIGNS = {
    "required_fields": lambda row, before, next_day: row["price"] == "",
    "unique_exec_id": lambda row, before, next_day: before is not None and row["exec_id"] == before["exec_id"],
    "allowed_values_side": lambda row, before, next_day: row["side"] == "HOLD",
    "positive_quantity_price": lambda row, before, next_day: row["quantity"] == "0",
    "value_range_fee": lambda row, before, next_day: row["fee"] == "-0.0100",
    "timestamp_within_date_ts": lambda row, before, next_day: row["ts"].startswith(next_day),
    "known_accounts": lambda row, before, next_day: row["account"] == "ACC-UNKNOWN",
    "known_symbols": lambda row, before, next_day: row["symbol"] == "ZZZZ",
}


def planted_rows(day) -> dict[str, set[int]]:
    """Rule -> the indices of the rows of the written file that carry its fault."""
    with (day.landing_root / day.business_date.isoformat() / "executions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == day.rows
    next_day = (day.business_date + dt.timedelta(days=1)).isoformat()
    return {rule: {i for i, row in enumerate(rows) if sign(row, rows[i - 1] if i else None, next_day)}
            for rule, sign in FAULT_SIGNS.items()}


def test_one_fault_per_rule_is_planted_on_distinct_rows(smoke):
    outcome, _ = smoke
    (result,) = outcome["results"]
    day = result.data
    assert set(FAULT_SIGNS) == {f.rule for f in bench.FAULTS} == set(day.planted)
    assert {rule.name for rule in outcome["plan"].rules} == set(day.planted)
    planted = planted_rows(day)
    for rule, rows in planted.items():
        assert len(rows) == day.planted[rule] >= 1, rule
        assert 0 not in rows, f"{rule} was planted on the first row"
    for (rule, rows), (other, other_rows) in itertools.combinations(planted.items(), 2):
        assert not rows & other_rows, f"{rule} and {other} were planted on the same rows {sorted(rows & other_rows)}"
    # Every engine, in every run, fails exactly those rows (a duplicated exec_id fails with the row it copies).
    for engine, measurements in result.runs.items():
        for m in measurements:
            counts = m.result["counts"]
            assert set(outcome["plan"].same_names) <= set(counts), engine
            for rule in set(counts) & set(planted):
                want = 2 * len(planted[rule]) if rule == "unique_exec_id" else len(planted[rule])
                assert int(counts[rule]) == want, f"{engine} failed {counts[rule]} rows of {rule}, {want} were planted"


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
