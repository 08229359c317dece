"""Every fault of the generator's catalogue is caught, by the check that should catch it.

This file walks the faults that a table's own rules see (one table, or market data judged against
the other market-data tables); tests/test_reconciliation.py walks the faults only a comparison
between tables can see (invariants 5 to 10). A test here proves the two walks cover the whole
catalogue. The walk runs the real ingestion and the real rule files on DuckDB for each fault
(fast); the end-to-end tests (tests/test_daily_books.py, tests/test_gating.py,
tests/test_fault_halts_pnl.py) show the same checks halting the books through Dagster.
"""

import datetime as dt
import shutil

import dagster as dg
import duckdb
import pytest

from asset_checks.dagster_checks import target_of
from asset_checks.engine import run_rules, table_context
from asset_checks.rules import load_rules
from cei_assets.ingestion import load_dataset
from cei_assets.landing import ALL_DATASETS, DATASETS_BY_NAME
from cei_assets.sample_data import FAULTS, generate_landing

START = dt.date(2026, 10, 1)
DAYS = 3
# Faults that one table's own rules can see. The rest break an agreement between tables (orders
# and fills, fills and confirms, books and statements, the firm's marks and the broker's): the
# reconciliation catches those, and tests/test_reconciliation.py walks them.
CROSS_TABLE_INVARIANTS = {5, 6, 7, 8}
SINGLE_TABLE_FAULTS = [
    f for f in FAULTS.values()
    if len(f.datasets) == 1 and f.datasets[0] in DATASETS_BY_NAME
    and f.invariant not in CROSS_TABLE_INVARIANTS and f.name != "broker_price_off"
]
# Market-data faults planted in several files at once (a real-looking move with the broker's
# statement agreeing): the market-data rules judge them.
MARKET_FAULTS_ACROSS_TABLES = [
    f for f in FAULTS.values() if len(f.datasets) > 1 and f.invariant not in CROSS_TABLE_INVARIANTS
    and f.invariant <= 4
]


def _outcomes_for(landing, day, table):
    """Load the whole landing into a fresh warehouse and run the rules of one table for `day`."""
    conn = duckdb.connect()
    problems = {}
    dates = sorted(p.name for p in landing.iterdir() if p.is_dir() and p.name[:2] == "20")
    for dataset in ALL_DATASETS:
        if dataset.daily:
            for folder in dates:
                result = load_dataset(conn, dataset, landing, dt.date.fromisoformat(folder))
                if folder == day.isoformat():
                    problems[dataset.name] = result.problems
        else:
            problems[dataset.name] = load_dataset(conn, dataset, landing).problems
    failures = []
    if problems.get(table):  # the landing_file check: blocking
        failures.append(("landing_file", "ERROR", problems[table][0].message))
    rules = load_rules().get(table, [])
    asset_key, relation, key_columns, _ = target_of(table)
    ctx = table_context(conn, table, relation, day, key_columns)
    for outcome in run_rules(conn, ctx, rules):
        if not outcome.passed:
            failures.append((outcome.check_name, outcome.severity, outcome.description))
    conn.close()
    return failures


@pytest.fixture(scope="module")
def clean_landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("clean") / "landing"
    summary = generate_landing(landing, START, DAYS, seed=5, symbols=12, quotes_per_symbol=120, orders_per_day=15)
    return landing, [dt.date.fromisoformat(str(d)) for d in summary.trading_dates]


def test_clean_generated_data_fails_no_check(clean_landing):
    landing, dates = clean_landing
    for table in load_rules():
        failures = _outcomes_for(landing, dates[-1], table)
        assert not failures, f"{table}: {failures}"


@pytest.mark.parametrize("fault", SINGLE_TABLE_FAULTS, ids=lambda f: f.name)
def test_a_single_table_fault_fails_a_check_on_that_table_with_the_right_severity(fault, tmp_path):
    landing = tmp_path / "landing"
    summary = generate_landing(landing, START, DAYS, seed=5, symbols=12, quotes_per_symbol=120, orders_per_day=15,
                               fault=fault.name)
    day = dt.date.fromisoformat(str(summary.trading_dates[-1]))
    table = fault.datasets[0]
    failures = _outcomes_for(landing, day, table)
    assert failures, f"{fault.name}: no check on {table} failed"
    severities = {severity for _, severity, _ in failures}
    if fault.blocking_expected:
        assert "ERROR" in severities, f"{fault.name} must block: {failures}"
        # A failed blocking check stops every asset downstream of its own for the date
        # (Dagster's blocking checks; tests/test_fault_halts_pnl.py shows it end to end), so the
        # P&L is not built when the failing check is blocking and the P&L is downstream.
        halting = [name for name, severity, _ in failures if severity == "ERROR"
                   and _halts_the_pnl(dg.AssetCheckKey(target_of(table)[0], name))]
        assert halting, f"{fault.name}: no failing blocking check upstream of daily_pnl: {failures}"
    else:
        assert severities == {"WARN"}, f"{fault.name} must only warn: {failures}"


def _halts_the_pnl(check_key) -> bool:
    from cei_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    spec = graph.get_check_spec(check_key)
    downstream = dg.AssetSelection.assets(check_key.asset_key).downstream().resolve(graph)
    return bool(spec.blocking) and dg.AssetKey("daily_pnl") in downstream


@pytest.mark.parametrize("fault", MARKET_FAULTS_ACROSS_TABLES, ids=lambda f: f.name)
def test_a_market_data_fault_across_files_is_caught_by_the_market_data_rules(fault, tmp_path):
    landing = tmp_path / "landing"
    summary = generate_landing(landing, START, DAYS, seed=5, symbols=12, quotes_per_symbol=120, orders_per_day=15,
                               fault=fault.name)
    day = dt.date.fromisoformat(str(summary.trading_dates[-1]))
    failures = [f for table in fault.datasets if table in load_rules() for f in _outcomes_for(landing, day, table)]
    assert failures, f"{fault.name}: no market-data check failed"
    severities = {severity for _, severity, _ in failures}
    if fault.blocking_expected:
        assert "ERROR" in severities, f"{fault.name} must block: {failures}"
    else:
        assert severities == {"WARN"}, f"{fault.name} must only warn: {failures}"


def test_the_walks_cover_the_whole_fault_catalogue():
    from test_reconciliation import RECONCILIATION_FAULTS

    walked_here = {f.name for f in SINGLE_TABLE_FAULTS + MARKET_FAULTS_ACROSS_TABLES}
    assert walked_here | set(RECONCILIATION_FAULTS) == set(FAULTS)
