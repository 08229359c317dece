"""The daily graph end to end: generated landing files -> Dagster -> dbt on DuckDB -> the books.

These run the real thing: the `cei` command line in a subprocess, the Dagster instance on
SQLite, dbt building DuckDB. One landing root of four trading dates (a split on the second,
a cash dividend on the third) is generated and run once for the module.
"""

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from cei_cli import cei

from cei_assets.sample_data import generate_landing

START = dt.date(2026, 10, 1)
DAYS = 3  # the generator splits a security on the 2nd date and pays a dividend on the 3rd
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """Three generated trading dates, each run through `cei run`, in order."""
    root = tmp_path_factory.mktemp("books")
    landing, home = root / "landing", root / "home"
    summary = generate_landing(landing, START, DAYS, seed=11)
    dates = [dt.date.fromisoformat(str(d)) for d in summary.trading_dates]
    runs = {d: cei("run", "--date", d.isoformat(), home=home, landing=landing) for d in dates}
    manifest = json.loads((landing / "_generator.json").read_text())
    return {"landing": landing, "home": home, "dates": dates, "runs": runs, "manifest": manifest}


def warehouse(books):
    return duckdb.connect(str(books["home"] / "warehouse.duckdb"), read_only=True)


def test_every_generated_date_runs_green_and_every_asset_is_materialized(books):
    for day, result in books["runs"].items():
        assert result.returncode == 0, f"{day}:\n{result.stdout}\n{result.stderr}"
        status = json.loads(cei("status", "--date", day.isoformat(), "--json", home=books["home"]).stdout)
        assert status["date"] == day.isoformat()
        # The scorecard is not part of the daily graph: it has its own job, scheduled after the runs.
        missing = [a["key"] for a in status["assets"] if not a["materialized"] and a["key"] != "data_quality_scorecard"]
        assert not missing, f"{day}: not materialized: {missing}"
        failed = [c for c in status["checks"] if c["passed"] is False and c["blocking"]]
        assert not failed, f"{day}: blocking checks failed on clean data: {failed}"
        assert {"asset", "name", "passed", "severity", "blocking", "description", "metadata"} <= set(status["checks"][0])


def test_positions_roll_forward_to_the_brokers_statement_every_day(books):
    with warehouse(books) as conn:
        breaks = conn.execute("""
            WITH firm AS (SELECT business_date, account, symbol, quantity FROM books.positions WHERE quantity <> 0),
                 broker AS (SELECT business_date, account, symbol, quantity FROM raw.broker_positions WHERE quantity <> 0)
            SELECT coalesce(f.business_date, b.business_date), coalesce(f.account, b.account),
                   coalesce(f.symbol, b.symbol), f.quantity, b.quantity
            FROM firm f FULL OUTER JOIN broker b USING (business_date, account, symbol)
            WHERE f.quantity IS DISTINCT FROM b.quantity
        """).fetchall()
        days = conn.execute("SELECT count(DISTINCT business_date) FROM books.positions").fetchone()[0]
    assert days == DAYS
    assert breaks == []


def test_cash_rolls_forward_to_the_brokers_statement_to_the_cent(books):
    with warehouse(books) as conn:
        breaks = conn.execute("""
            SELECT coalesce(f.business_date, b.business_date), coalesce(f.account, b.account),
                   coalesce(f.currency, b.currency), f.balance, b.balance
            FROM books.cash_balances f FULL OUTER JOIN raw.broker_cash b USING (business_date, account, currency)
            WHERE f.balance IS NULL OR b.balance IS NULL OR abs(f.balance - b.balance) >= 0.01
        """).fetchall()
    assert breaks == []


def test_pnl_splits_exactly_into_realized_and_unrealized_and_follows_the_cash_flow_equation(books):
    with warehouse(books) as conn:
        rows = conn.execute("""
            SELECT business_date, account, symbol, realized_pnl_base, unrealized_pnl_base, total_pnl_base,
                   end_market_value_base - start_market_value_base - trade_cash_flow_base + dividends_base - fees_base
            FROM books.daily_pnl
        """).fetchall()
    assert rows
    for day, account, symbol, realized, unrealized, total, by_equation in rows:
        assert realized + unrealized == pytest.approx(total, abs=1e-6), (day, account, symbol)
        assert total == pytest.approx(by_equation, abs=1e-6), (day, account, symbol)


def test_a_split_multiplies_the_holding_and_a_dividend_pays_into_cash(books):
    with warehouse(books) as conn:
        split = conn.execute(
            "SELECT symbol, ex_date, ratio FROM raw.corporate_actions WHERE action = 'SPLIT' ORDER BY ex_date LIMIT 1"
        ).fetchone()
        dividend = conn.execute(
            "SELECT symbol, ex_date, amount, currency FROM raw.corporate_actions WHERE action = 'CASH_DIVIDEND' "
            "ORDER BY ex_date LIMIT 1"
        ).fetchone()
        assert split and dividend, "the generator must place a split and a dividend in the first dates"
        symbol, ex_date, ratio = split
        before = dict(conn.execute(
            "SELECT account, quantity FROM books.positions WHERE symbol = ? AND business_date < ? "
            "QUALIFY row_number() OVER (PARTITION BY account ORDER BY business_date DESC) = 1", [symbol, ex_date]).fetchall())
        after = conn.execute(
            "SELECT account, prior_quantity FROM books.positions WHERE symbol = ? AND business_date = ?",
            [symbol, ex_date]).fetchall()
        assert after
        for account, prior_quantity in after:
            assert prior_quantity == before.get(account, 0) * ratio

        symbol, ex_date, amount, currency = dividend
        paid = conn.execute(
            "SELECT account, dividend_income FROM books.positions WHERE symbol = ? AND business_date = ? "
            "AND dividend_income <> 0", [symbol, ex_date]).fetchall()
        assert paid
        holders = dict(conn.execute(
            "SELECT account, quantity FROM books.positions WHERE symbol = ? AND business_date < ? "
            "QUALIFY row_number() OVER (PARTITION BY account ORDER BY business_date DESC) = 1", [symbol, ex_date]).fetchall())
        for account, income in paid:
            assert income == holders[account] * amount
        credited = dict(conn.execute(
            "SELECT account, dividends FROM books.cash_balances WHERE business_date = ? AND currency = ?",
            [ex_date, currency]).fetchall())
        for account, income in paid:
            assert float(credited[account]) == pytest.approx(float(income))


def _fresh_copy(books, tmp_path) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(books["landing"], landing)
    return landing


def test_a_missing_landing_file_fails_the_run_naming_the_file(books, tmp_path):
    landing = _fresh_copy(books, tmp_path)
    first = books["dates"][0]
    (landing / first.isoformat() / "executions.csv").unlink()
    result = cei("run", "--date", first.isoformat(), home=tmp_path / "home", landing=landing)
    assert result.returncode == 1
    assert f"missing landing file {landing / first.isoformat() / 'executions.csv'}" in result.stdout
    assert "Traceback" not in result.stdout


def test_a_malformed_value_fails_the_run_naming_the_file_the_column_and_the_line(books, tmp_path):
    landing = _fresh_copy(books, tmp_path)
    first = books["dates"][0]
    path = landing / first.isoformat() / "executions.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index("price")] = "12.3.4"
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    result = cei("run", "--date", first.isoformat(), home=tmp_path / "home", landing=landing)
    assert result.returncode == 1
    assert f"{path}: column price has 1 value(s) that are not numbers (line(s) 3)" in result.stdout


def test_a_date_whose_previous_books_are_missing_is_refused_with_the_date_to_run_first(books, tmp_path):
    third = books["dates"][2]
    result = cei("run", "--date", third.isoformat(), home=tmp_path / "home", landing=books["landing"])
    assert result.returncode == 1
    assert f"run `cei run --date {books['dates'][1]}` first" in result.stdout


def test_the_daily_graph_also_runs_under_dagsters_multiprocess_executor_without_lock_errors(books, tmp_path):
    # The landing files and the dbt staging models: landing steps write the warehouse two at a
    # time from their own processes, then dbt from its own. (The whole graph under a process per
    # step takes minutes here; the books on other processes are tests/test_celery.py's.)
    first = books["dates"][0]
    result = cei("run", "--date", first.isoformat(), "--select", "group:landing,group:staging",
                 home=tmp_path / "home", landing=books["landing"], extra_env={"CEI_EXECUTOR": "multiprocess"})
    assert result.returncode == 0, result.stdout + result.stderr
    log = next((tmp_path / "home" / "logs").glob("run-*.log")).read_text()
    assert "multiprocess executor" in log  # the steps really ran in separate processes


def test_a_date_that_is_not_a_trading_day_is_bad_usage(books, tmp_path):
    result = cei("run", "--date", "2026-10-03", home=tmp_path / "home", landing=books["landing"])
    assert result.returncode == 2
    assert "not a trading day" in result.stderr
