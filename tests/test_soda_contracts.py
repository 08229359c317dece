"""Soda Core v4 contracts on the books: real Soda against a real DuckDB file, one trading date at a time.

Clean books pass every contract check; a faulted row fails the check that guards it with Soda's
count, the failing rows read back by CEI, and a sentence naming the table, the date, the column
and the accounts and symbols concerned. Nothing is sent anywhere.
"""

import datetime as dt
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from asset_checks import soda_checks
from asset_checks.soda_checks import (
    SODA_TABLES,
    ContractError,
    build_soda_checks,
    contract_checks,
    load_contract,
    verify_contracts,
)
from cei_assets.trading_calendar import trading_day_partitions
from cei_assets.warehouse import WarehouseResource

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The warehouse's column types, as dbt builds them.
DDL = """
CREATE SCHEMA books;
CREATE TABLE books.positions (
    business_date DATE, account VARCHAR, symbol VARCHAR, currency VARCHAR, base_currency VARCHAR,
    quantity DECIMAL(38,12), avg_cost DOUBLE, avg_cost_base DOUBLE, cost_basis_base DOUBLE,
    prior_quantity DECIMAL(38,12), prior_cost_basis_base DOUBLE, bought_quantity DECIMAL(38,6),
    sold_quantity DECIMAL(38,6), buy_notional DECIMAL(38,12), sell_notional DECIMAL(38,12), fees DECIMAL(38,6),
    fx_to_base DOUBLE, realized_trading_pnl DOUBLE, realized_trading_pnl_base DOUBLE, dividend_currency VARCHAR,
    dividend_income DECIMAL(38,12));
CREATE TABLE books.cash_balances (
    business_date DATE, account VARCHAR, currency VARCHAR, opening_balance DECIMAL(24,6),
    trade_cash_flow DECIMAL(38,12), fees DECIMAL(38,6), dividends DECIMAL(38,12), balance DECIMAL(38,12));
CREATE TABLE books.market_values (
    business_date DATE, account VARCHAR, symbol VARCHAR, currency VARCHAR, base_currency VARCHAR,
    quantity DECIMAL(38,12), close_price DECIMAL(24,6), market_value DECIMAL(38,18), fx_to_base DOUBLE,
    market_value_base DOUBLE);
CREATE TABLE books.daily_pnl (
    business_date DATE, account VARCHAR, symbol VARCHAR, base_currency VARCHAR, start_market_value_base DOUBLE,
    end_market_value_base DOUBLE, trade_cash_flow_base DOUBLE, dividends_base DOUBLE, fees_base DOUBLE,
    realized_pnl_base DOUBLE, unrealized_pnl_base DOUBLE, total_pnl_base DOUBLE);
"""

# (account, symbol, currency, base_currency, prior_quantity, bought, sold, avg_cost, close, fx_to_base)
POSITIONS = [
    ("ACC1", "AAPL", "USD", "USD", 80, 30, 10, 150.0, 151.25, 1.0),
    ("ACC1", "SAP", "EUR", "USD", 50, 0, 0, 210.0, 212.5, 1.08),
    ("ACC2", "VOD", "GBP", "EUR", -100, 0, 100, 0.71, 0.7082, 1.17),
]
# (account, currency, opening_balance, trade_cash_flow, fees, dividends)
CASH = [("ACC1", "USD", 1_000_000, -3_000, 12.5, 0), ("ACC1", "EUR", 50_000, 0, 0, 125), ("ACC2", "GBP", 20_000, -70.82, 1, 0)]


def build_books(conn, dates=(D1, D2)) -> None:
    """Clean books for the dates: every identity of the contracts holds."""
    conn.execute(DDL)
    for day in dates:
        for account, symbol, ccy, base, prior, bought, sold, cost, close, fx in POSITIONS:
            quantity = prior + bought - sold
            conn.execute(
                "INSERT INTO books.positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)",
                [day, account, symbol, ccy, base, quantity, cost, cost * fx, quantity * cost * fx, prior,
                 prior * cost * fx, bought, sold, bought * close, sold * close, 1.5, fx, 0.0, 0.0],
            )
            if quantity:
                conn.execute(
                    "INSERT INTO books.market_values SELECT ?, ?, ?, ?, ?, q, c, q * c, ?, CAST(q * c AS DOUBLE) * ? "
                    "FROM (SELECT CAST(? AS DECIMAL(38,12)) AS q, CAST(? AS DECIMAL(24,6)) AS c)",
                    [day, account, symbol, ccy, base, fx, fx, quantity, close],
                )
            start, end, flow, fees = 1000.0, 1100.0, 40.0, 1.5
            realized = 20.0
            total = end - start - flow - fees
            conn.execute(
                "INSERT INTO books.daily_pnl VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                [day, account, symbol, base, start, end, flow, fees, realized, total - realized, total],
            )
        for account, ccy, opening, flow, fees, dividends in CASH:
            conn.execute(
                "INSERT INTO books.cash_balances SELECT ?, ?, ?, o, f, e, d, o + f - e + d FROM (SELECT "
                "CAST(? AS DECIMAL(24,6)) AS o, CAST(? AS DECIMAL(38,12)) AS f, CAST(? AS DECIMAL(38,6)) AS e, "
                "CAST(? AS DECIMAL(38,12)) AS d)",
                [day, account, ccy, opening, flow, fees, dividends],
            )


@pytest.fixture
def warehouse_file(tmp_path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        build_books(conn)
    return path


def verify(path: Path, day=D2, tables=None) -> dict:
    with duckdb.connect(str(path)) as conn:
        return verify_contracts(conn, day, tables)


def by_name(outcomes) -> dict:
    return {o.check_name: o for o in outcomes}


def fault(path: Path, sql: str, params=()) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute(sql, list(params))


def test_clean_books_pass_every_contract_check_for_the_trading_date_checked(warehouse_file):
    results = verify(warehouse_file)
    assert set(results) == set(SODA_TABLES)
    for table, outcomes in results.items():
        assert [o.check_name for o in outcomes] == [c.check_name for c in contract_checks(table)]
        for outcome in outcomes:
            assert outcome.passed, f"{table}.{outcome.check_name}: {outcome.description}"
            assert outcome.engine == "soda" and outcome.extra["soda_outcome"] == "PASSED"
    # Each check judged the three rows of 2026-10-02 only, not the six rows of both dates.
    positions = by_name(results["positions"])
    assert positions["soda_missing_account"].total_count == 3
    assert positions["soda_missing_account"].description == (
        "Every position names its account: passed on 3 row(s) of books.positions for 2026-10-02"
    )


def test_a_position_booked_twice_fails_the_duplicate_check_with_both_rows_named(warehouse_file):
    fault(warehouse_file, "INSERT INTO books.positions SELECT * FROM books.positions "
                          "WHERE business_date = ? AND account = 'ACC1' AND symbol = 'AAPL'", [D2])
    outcomes = by_name(verify(warehouse_file, tables=["positions"])["positions"])
    duplicate = outcomes["soda_duplicate"]
    assert not duplicate.passed and duplicate.blocking and duplicate.severity == "ERROR"
    assert duplicate.failing_count == 1 and duplicate.total_count == 4  # Soda counts the extra copy
    assert [(r["account"], r["symbol"], r["_copies"]) for r in duplicate.sample_rows] == [("ACC1", "AAPL", 2)] * 2
    assert duplicate.description == (
        "1 duplicate row(s) in books.positions for 2026-10-02 on (business_date, account, symbol); "
        "accounts: ACC1; symbols: AAPL"
    )
    assert duplicate.affected == {"account": ["ACC1"], "symbol": ["AAPL"], "currency": ["USD"]}
    metadata = duplicate.metadata()
    assert metadata["engine"] == "soda" and metadata["blocking"] is True
    assert metadata["reason"].startswith("a position counted twice")
    # The other checks still pass, and the previous date is untouched by the fault.
    assert all(o.passed for name, o in outcomes.items() if name != "soda_duplicate")
    assert all(o.passed for o in verify(warehouse_file, day=D1, tables=["positions"])["positions"])


def test_an_open_position_without_a_mark_fails_with_its_account_and_symbol(warehouse_file):
    fault(warehouse_file, "UPDATE books.market_values SET close_price = NULL, market_value = NULL, "
                          "market_value_base = NULL WHERE business_date = ? AND symbol = 'VOD'", [D2])
    outcomes = by_name(verify(warehouse_file, tables=["market_values"])["market_values"])
    missing = outcomes["soda_missing_close_price"]
    assert not missing.passed and missing.blocking
    assert (missing.failing_count, missing.total_count) == (1, 3)
    (row,) = missing.sample_rows
    assert (row["business_date"], row["account"], row["symbol"], row["close_price"]) == (D2, "ACC2", "VOD", None)
    assert missing.description == (
        "1 of 3 row(s) of books.market_values for 2026-10-02 have no close_price; accounts: ACC2; symbols: VOD"
    )
    assert not outcomes["soda_missing_market_value_base"].passed
    assert outcomes["soda_missing_fx_to_base"].passed


def test_pnl_components_that_do_not_add_up_fail_the_row_identity_with_the_lines(warehouse_file):
    fault(warehouse_file, "UPDATE books.daily_pnl SET realized_pnl_base = realized_pnl_base + 5 "
                          "WHERE business_date = ? AND account = 'ACC1'", [D2])
    outcomes = by_name(verify(warehouse_file, tables=["daily_pnl"])["daily_pnl"])
    broken = outcomes["soda_failed_rows_components_add_up"]
    assert not broken.passed and broken.blocking
    assert (broken.failing_count, broken.total_count) == (2, 3)
    assert sorted(r["symbol"] for r in broken.sample_rows) == ["AAPL", "SAP"]
    assert {"realized_pnl_base", "unrealized_pnl_base", "total_pnl_base"} <= set(broken.sample_rows[0])
    assert "2 of 3 row(s) of books.daily_pnl for 2026-10-02 break 'Realized plus unrealized equals total" in (
        broken.description)
    assert "accounts: ACC1" in broken.description
    assert outcomes["soda_failed_rows_total_explained"].passed


def test_a_cash_balance_that_does_not_roll_forward_and_a_bad_currency_code_fail(warehouse_file):
    fault(warehouse_file, "UPDATE books.cash_balances SET balance = balance + 0.01 "
                          "WHERE business_date = ? AND currency = 'EUR'", [D2])
    fault(warehouse_file, "UPDATE books.cash_balances SET currency = 'gbp' "
                          "WHERE business_date = ? AND account = 'ACC2'", [D2])
    outcomes = by_name(verify(warehouse_file, tables=["cash_balances"])["cash_balances"])
    rolls = outcomes["soda_failed_rows_rolls_forward"]
    assert (rolls.passed, rolls.failing_count) == (False, 1)
    assert rolls.sample_rows[0]["currency"] == "EUR" and rolls.sample_rows[0]["account"] == "ACC1"
    code = outcomes["soda_invalid_currency"]
    assert (code.passed, code.failing_count, code.total_count) == (False, 1, 3)
    assert code.sample_rows[0]["currency"] == "gbp"
    assert "have an invalid currency (must be ISO 4217 code ^[A-Z]{3}$)" in code.description


def test_a_retyped_or_missing_column_fails_the_schema_check_naming_the_column(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        build_books(conn)
        conn.execute("ALTER TABLE books.cash_balances ALTER balance TYPE DOUBLE")
        conn.execute("ALTER TABLE books.daily_pnl DROP COLUMN fees_base")
    results = verify(path, tables=["cash_balances", "daily_pnl"])
    cash_schema = by_name(results["cash_balances"])["soda_schema"]
    assert not cash_schema.passed and cash_schema.blocking
    assert cash_schema.description == (
        "books.cash_balances does not match its contract: column balance is double, the contract says decimal"
    )
    pnl = by_name(results["daily_pnl"])
    assert pnl["soda_schema"].description == "books.daily_pnl does not match its contract: missing column(s) fees_base"
    # Soda cannot run the checks that read the missing column: they fail closed, never pass.
    assert not pnl["soda_invalid_fees_base"].passed
    assert "Soda could not evaluate" in pnl["soda_invalid_fees_base"].description


def test_an_empty_day_of_market_values_only_warns(warehouse_file):
    fault(warehouse_file, "DELETE FROM books.market_values WHERE business_date = ?", [D2])
    row_count = by_name(verify(warehouse_file, tables=["market_values"])["market_values"])["soda_row_count"]
    assert not row_count.passed
    assert (row_count.blocking, row_count.severity) == (False, "WARN")
    assert row_count.description == (
        "books.market_values for 2026-10-02 has 0 row(s); the trading date has market values (must be > 0)"
    )


def test_books_that_were_never_built_fail_every_check_with_a_clear_message(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    outcomes = verify(path, tables=["positions"])["positions"]
    assert outcomes and not any(o.passed for o in outcomes)
    assert outcomes[0].description == "books.positions does not exist in the warehouse: the books were not built"


def test_a_warehouse_path_is_opened_read_only_under_the_warehouse_lock(warehouse_file):
    fault(warehouse_file, "UPDATE books.positions SET account = NULL WHERE business_date = ? AND symbol = 'SAP'", [D2])
    lock = Path(str(warehouse_file) + ".lock")
    assert not lock.exists()
    results = verify_contracts(warehouse_file, D2, ["positions"])
    assert lock.exists()  # WarehouseResource.read() took the shared lock
    missing = by_name(results["positions"])["soda_missing_account"]
    assert (missing.passed, missing.failing_count) == (False, 1)
    # And the connection it used is gone: a writer can open the file again.
    with WarehouseResource(path=str(warehouse_file)).write() as conn:
        assert conn.execute("SELECT count(*) FROM books.positions").fetchone()[0] == 6


def test_soda_sends_nothing_anywhere(warehouse_file, monkeypatch):
    attempts = []
    real_connect = socket.socket.connect

    def refuse(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"network disabled in this test: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    results = verify(warehouse_file)
    assert all(o.passed for outcomes in results.values() for o in outcomes)
    assert attempts == []
    assert os.environ["SODA_CORE_TELEMETRY_ENABLED"] == "false"
    from soda_core.telemetry.soda_telemetry import SodaTelemetry

    assert not SodaTelemetry()._SodaTelemetry__send  # no exporter to collect.soda.io was set up


def test_every_contract_check_is_a_dagster_check_on_its_books_asset_with_its_blocking_flag():
    definitions = build_soda_checks()
    assert len(definitions) == len(SODA_TABLES)
    partitions = trading_day_partitions()
    for table, definition in zip(SODA_TABLES, definitions):
        specs = {spec.name: spec for spec in definition.check_specs}
        assert set(specs) == {c.check_name for c in contract_checks(table)}
        for check in contract_checks(table):
            spec = specs[check.check_name]
            assert spec.asset_key == dg.AssetKey([table])
            assert spec.blocking is check.blocking
            assert spec.partitions_def == partitions
    positions = {c.check_name: c for c in contract_checks("positions")}
    assert {"soda_schema", "soda_row_count", "soda_duplicate", "soda_missing_account", "soda_missing_symbol",
            "soda_missing_quantity", "soda_failed_rows_rolls_forward"} <= set(positions)
    assert positions["soda_duplicate"].blocking and not positions["soda_invalid_currency"].blocking
    assert not {c.check_name: c for c in contract_checks("market_values")}["soda_row_count"].blocking


def test_the_dagster_check_runs_the_contract_for_its_partition(warehouse_file):
    fault(warehouse_file, "INSERT INTO books.positions SELECT * FROM books.positions "
                          "WHERE business_date = ? AND symbol = 'VOD'", [D2])

    @dg.asset(key=["positions"], partitions_def=trading_day_partitions())
    def positions():
        return None

    result = dg.materialize(
        [positions, build_soda_checks()[0]],
        partition_key=D2.isoformat(),
        resources={"warehouse": WarehouseResource(path=str(warehouse_file))},
        raise_on_error=False,
    )
    assert not result.success  # a failed blocking check fails its step, so nothing downstream builds
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {c.check_name for c in contract_checks("positions")}
    duplicate = evaluations["soda_duplicate"]
    assert not duplicate.passed and duplicate.severity == dg.AssetCheckSeverity.ERROR
    assert duplicate.metadata["failing_count"].value == 1
    assert duplicate.metadata["affected"].value["symbol"] == ["VOD"]
    assert len(duplicate.metadata["sample_failing_rows"].value) == 2
    assert evaluations["soda_missing_account"].passed


def test_a_contract_check_without_a_blocking_flag_is_refused_at_load(tmp_path, monkeypatch):
    (tmp_path / "positions.yaml").write_text(textwrap.dedent("""\
        dataset: warehouse/books/positions
        filter: business_date = DATE '${var.BUSINESS_DATE}'
        variables:
          BUSINESS_DATE:
        columns:
          - name: account
            checks:
              - missing:
                  name: Every position names its account
        """))
    monkeypatch.setattr(soda_checks, "CONTRACTS_DIR", tmp_path)
    load_contract.cache_clear()
    try:
        with pytest.raises(ContractError, match=r"positions.yaml: line 8: missing on account needs attributes"):
            load_contract("positions")
    finally:
        load_contract.cache_clear()


def test_importing_and_building_the_checks_neither_imports_soda_nor_opens_the_warehouse(tmp_path):
    warehouse = tmp_path / "never" / "warehouse.duckdb"
    code = textwrap.dedent(f"""
        import sys, time
        import dagster, cei_assets.resources, cei_assets.trading_calendar, asset_checks.dagster_checks
        started = time.perf_counter()
        from asset_checks.soda_checks import build_soda_checks
        imported = time.perf_counter() - started
        definitions = build_soda_checks()
        assert "soda_core" not in sys.modules, "Soda was imported while building the definitions"
        import os
        assert os.environ["SODA_CORE_TELEMETRY_ENABLED"] == "false", "telemetry must be off before Soda loads"
        print(f"{{imported:.3f}}")
    """)
    env = {**os.environ, "CEI_WAREHOUSE": str(warehouse), "CEI_HOME": str(tmp_path / "home")}
    env.pop("SODA_CORE_TELEMETRY_ENABLED", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) < 1.0
    assert not warehouse.exists() and not warehouse.parent.exists()
