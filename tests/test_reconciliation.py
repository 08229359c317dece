"""The reconciliation (dbt_project/models/reconciliation, docs/reconciliation.md) on generated data.

Clean data (with a recorded split and dividend) gives no break. Every reconciliation fault of the
generator's catalogue (invariants 5 to 10) fails the right check with the right severity, shows
in recon_breaks with the right category, sides and P&L impact, and explain_pnl accounts for the
difference between the books' P&L and the broker's; a duplicated fill is explained to the cent.

To stay fast the walk does not go through Dagster: small landings are loaded with the real
ingestion into DuckDB and `dbt build` runs directly with the vars cei passes (dbt_vars_for). The
first two dates are built once; each fault copies that warehouse and builds its last date (two
builds at a time). One test goes through `cei run` to show the blocking reaches Dagster.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from cei_cli import cei

from cei_assets import settings
from cei_assets.assets.books import dbt_vars_for
from cei_assets.ingestion import load_dataset
from cei_assets.landing import ALL_DATASETS
from cei_assets.pnl_explain import AccountExplanation, ExplanationUnavailable, explain_pnl, pnl_explanation
from cei_assets.sample_data import FAULTS, generate_landing

START = dt.date(2026, 10, 1)
DAYS = 3  # a split on the second date, a dividend on the third (the generator's schedule)
SMALL = {"seed": 5, "symbols": 5, "quotes_per_symbol": 20, "orders_per_day": 6}
DBT = str(Path(sys.executable).with_name("dbt"))
CATEGORIES = {"missing at broker", "missing internally", "late confirm", "quantity", "price", "fee", "duplicate",
              "position", "cash", "FX", "corporate action suspected"}

# fault -> (rule, category, the dbt test that must fail or warn)
RECONCILIATION_FAULTS = {
    "orphan_fill": ("fill_without_order", "missing internally", "no_trade_breaks"),
    "overfill": ("overfill", "quantity", "no_trade_breaks"),
    "fill_side_mismatch": ("fill_side", "quantity", "no_trade_breaks"),
    "fill_account_mismatch": ("fill_account", "position", "no_trade_breaks"),
    "limit_breach": ("limit_price", "price", "no_trade_breaks"),
    "missing_confirm": ("confirm_missing", "missing at broker", "no_trade_breaks"),
    "late_confirm": ("late_confirm", "late confirm", "no_late_confirms"),
    "confirm_price_off": ("confirm_price", "price", "no_trade_breaks"),
    "confirm_quantity_off": ("confirm_quantity", "quantity", "no_trade_breaks"),
    "confirm_fee_off": ("confirm_fee", "fee", "no_trade_breaks"),
    "duplicate_fill": ("duplicate_fill", "duplicate", "no_duplicated_or_unbooked_fills"),
    "orphan_confirm": ("fill_missing", "missing internally", "no_duplicated_or_unbooked_fills"),
    "position_off_at_broker": ("position_quantity", "position", "no_position_breaks"),
    "unrecorded_split": ("position_quantity", "corporate action suspected", "no_unrecorded_corporate_actions"),
    "cash_off_at_broker": ("cash_balance", "cash", "no_cash_breaks"),
    "unrecorded_dividend": ("cash_balance", "corporate action suspected", "no_unrecorded_corporate_actions"),
    "fx_rate_shift": ("fx_rate_move", "FX", "no_implausible_fx_rates"),
    "broker_mv_mismatch": ("broker_market_value", "price", "no_market_value_breaks"),
    "broker_price_off": ("broker_price", "price", "no_market_value_breaks"),
}


# --------------------------------------------------------------------------- building


def load_date(db: Path, landing: Path, day: dt.date) -> None:
    """What the landing assets do for a date: reference, opening and that date's files into raw."""
    conn = duckdb.connect(str(db))
    try:
        for dataset in ALL_DATASETS:
            result = load_dataset(conn, dataset, landing, day if dataset.daily else None)
            assert result.ok, result.summary()
    finally:
        conn.close()


@dataclasses.dataclass
class Build:
    returncode: int
    output: str
    statuses: dict[str, str]  # node name -> success | pass | warn | fail | error | skipped

    def failing(self, *states: str) -> set[str]:
        return {name for name, status in self.statuses.items() if status in states}


def dbt_build(db: Path, day: dt.date, target: Path, vars_override: dict | None = None) -> Build:
    dbt_vars = dbt_vars_for(day, START)
    dbt_vars.update(vars_override or {})
    env = {**os.environ, "CEI_WAREHOUSE": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    project = str(settings.DBT_PROJECT_DIR)
    completed = subprocess.run(
        [DBT, "build", "--vars", json.dumps(dbt_vars), "--project-dir", project, "--profiles-dir", project,
         "--target-path", str(target), "--log-path", str(target / "logs")],
        env=env, capture_output=True, text=True, timeout=600)
    results = target / "run_results.json"
    statuses = {}
    if results.exists():
        statuses = {r["unique_id"].split(".")[2]: r["status"] for r in json.loads(results.read_text())["results"]}
    return Build(completed.returncode, completed.stdout + completed.stderr, statuses)


def manifest_of(landing: Path) -> dict:
    return json.loads((landing / "_generator.json").read_text())


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The first two dates built once; the clean third date built on a copy."""
    root = tmp_path_factory.mktemp("recon")
    landing = root / "clean"
    summary = generate_landing(landing, START, DAYS, **SMALL)
    dates = list(summary.trading_dates)
    db, target = root / "base.duckdb", root / "target"
    builds = {}
    for day in dates[:-1]:
        load_date(db, landing, day)
        builds[day] = dbt_build(db, day, target)
        assert builds[day].returncode == 0, builds[day].output[-3000:]
    clean_db = root / "clean.duckdb"
    shutil.copy(db, clean_db)
    load_date(clean_db, landing, dates[-1])
    builds[dates[-1]] = dbt_build(clean_db, dates[-1], target)
    return {"root": root, "landing": landing, "dates": dates, "db": db, "clean_db": clean_db, "target": target,
            "builds": builds, "manifest": manifest_of(landing)}


def _run_fault(base, name: str) -> dict:
    root = base["root"] / name
    landing = root / "landing"
    generate_landing(landing, START, DAYS, fault=name, **SMALL)
    day = base["dates"][-1]
    for earlier in base["dates"][:-1]:  # the fault is on the last date: earlier dates are the same files
        for path in (landing / earlier.isoformat()).iterdir():
            assert path.read_bytes() == (base["landing"] / earlier.isoformat() / path.name).read_bytes(), path
    db, target = root / "warehouse.duckdb", root / "target"
    shutil.copy(base["db"], db)
    # Start from the parsed project of the base builds: dbt parses only what changed.
    shutil.copytree(base["target"], target, ignore=shutil.ignore_patterns("logs", "run", "compiled"))
    load_date(db, landing, day)
    return {"name": name, "landing": landing, "db": db, "day": day, "build": dbt_build(db, day, target),
            "fault": manifest_of(landing)["fault"], "target": target}


class FaultRuns(dict):
    """Fault name -> its built last date; a fault nobody selected up front is built when asked for."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def __missing__(self, name):
        self[name] = _run_fault(self.base, name)
        return self[name]


@pytest.fixture(scope="module")
def fault_runs(base, request):
    """The last date of every fault the session selected, built two at a time."""
    runs = FaultRuns(base)
    wanted = sorted({item.callspec.params["fault"] for item in request.session.items
                     if hasattr(item, "callspec") and "fault" in item.callspec.params
                     and item.module.__name__ == request.module.__name__})
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs.update(zip(wanted, pool.map(lambda name: _run_fault(base, name), wanted)))
    return runs


def breaks_of(db: Path, day: dt.date) -> list[dict]:
    with duckdb.connect(str(db), read_only=True) as conn:
        cursor = conn.execute("SELECT * FROM reconciliation.recon_breaks WHERE business_date = ?", [day])
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]


# --------------------------------------------------------------------------- what the warehouse says


class Books:
    """Marks, rates and trades of the fault date, to compute the expected impacts independently."""

    def __init__(self, db: Path, day: dt.date):
        self.day = day
        with duckdb.connect(str(db), read_only=True) as conn:
            self.mark = dict(conn.execute("SELECT symbol, close FROM raw.eod_prices WHERE business_date = ?",
                                          [day]).fetchall())
            usd = {"USD": Decimal(1)} | {pair[:3]: rate for pair, rate in conn.execute(
                "SELECT pair, rate FROM raw.fx_rates WHERE business_date = ? AND pair LIKE '%USD'", [day]).fetchall()}
            self.base = dict(conn.execute("SELECT account, base_currency FROM raw.accounts").fetchall())
            self.currency = dict(conn.execute("SELECT symbol, currency FROM raw.securities").fetchall())
            self.fills = self._rows(conn, "SELECT * FROM raw.executions WHERE business_date = ?", "exec_id")
            self.confirms = self._rows(conn, "SELECT * FROM raw.broker_trades WHERE business_date = ?", "exec_id")
        self.usd = usd

    def _rows(self, conn, sql, key):
        cursor = conn.execute(sql, [self.day])
        columns = [c[0] for c in cursor.description]
        return {row[columns.index(key)]: dict(zip(columns, row)) for row in cursor.fetchall()}

    def fx(self, account: str, currency: str) -> float:
        return float(self.usd[currency] / self.usd[self.base[account]])

    def fill_pnl(self, trade: dict) -> float:
        """A trade's P&L contribution at the close, in its account's base currency."""
        signed = trade["quantity"] if trade["side"] == "BUY" else -trade["quantity"]
        local = signed * (self.mark[trade["symbol"]] - trade["price"]) - trade["fee"]
        return float(local) * self.fx(trade["account"], self.currency[trade["symbol"]])

    def signed(self, trade: dict) -> Decimal:
        return trade["quantity"] if trade["side"] == "BUY" else -trade["quantity"]


def expected_breaks(name: str, fault: dict, books: Books) -> list[dict]:
    """The breaks a fault must produce: rule, keys, difference (firm - other) and P&L impact."""
    target = fault["target"]

    def trade(rule, exec_id, difference, impact, **extra):
        fill = books.fills.get(exec_id) or books.confirms[exec_id]
        return {"rule": rule, "account": fill["account"], "symbol": fill["symbol"], "reference": exec_id,
                "difference": difference, "impact_base": impact, **extra}

    def positions(category):
        return [{"rule": "position_quantity", "category": category, "account": d["account"], "symbol": d["symbol"],
                 "difference": d["quantity"],
                 "impact_base": d["quantity"] * float(books.mark[d["symbol"]])
                 * books.fx(d["account"], books.currency[d["symbol"]])}
                for d in fault["expected_position_diff"]]

    def cash(category, **extra):
        return [{"rule": "cash_balance", "category": category, "account": d["account"], "currency": d["currency"],
                 "difference": d["amount"], "impact_base": d["amount"] * books.fx(d["account"], d["currency"]),
                 **extra}
                for d in fault["expected_cash_diff"]]

    pnl = {d["account"]: d["amount"] for d in fault["expected_pnl_diff"] or []}
    if name in ("missing_confirm", "orphan_fill"):
        fill = books.fills[target["exec_id"]]
        rule = RECONCILIATION_FAULTS[name][0]
        return [trade(rule, target["exec_id"], books.signed(fill), books.fill_pnl(fill))]
    if name == "late_confirm":
        received = dt.datetime.fromisoformat(target["received_ts"].replace("Z", ""))
        late = (received - dt.datetime.combine(books.day, dt.time(23, 0))).total_seconds() / 60
        return [trade("late_confirm", target["exec_id"], pytest.approx(late, abs=0.01), 0.0)]
    if name == "confirm_price_off":
        fill = books.fills[target["exec_id"]]
        difference = Decimal(target["fill_value"]) - Decimal(target["confirm_value"])
        return [trade("confirm_price", target["exec_id"], difference,
                      float(-books.signed(fill) * difference) * books.fx(fill["account"], fill["currency"]))]
    if name == "confirm_quantity_off":
        fill = books.fills[target["exec_id"]]
        difference = Decimal(target["fill_value"]) - Decimal(target["confirm_value"])
        sign = 1 if fill["side"] == "BUY" else -1
        return [trade("confirm_quantity", target["exec_id"], difference,
                      float(sign * difference * (books.mark[fill["symbol"]] - fill["price"]))
                      * books.fx(fill["account"], fill["currency"]))]
    if name == "confirm_fee_off":
        fill = books.fills[target["exec_id"]]
        difference = Decimal(target["fill_value"]) - Decimal(target["confirm_value"])
        return [trade("confirm_fee", target["exec_id"], difference,
                      float(-difference) * books.fx(fill["account"], fill["currency"]))]
    if name == "duplicate_fill":
        fill = books.fills[target["duplicate_exec_id"]]
        return ([trade("duplicate_fill", target["duplicate_exec_id"], books.signed(fill), pnl[fill["account"]])]
                + positions("duplicate") + cash("duplicate"))
    if name == "orphan_confirm":
        confirm = books.confirms[target["exec_id"]]
        return ([trade("fill_missing", target["exec_id"], -books.signed(confirm), -books.fill_pnl(confirm))]
                + positions("missing internally") + cash("missing internally"))
    if name == "overfill":
        (account,) = pnl
        return [{"rule": "overfill", "reference": target["order_id"], "account": account,
                 "difference": target["filled_quantity"] - target["order_quantity"], "impact_base": pnl[account]}]
    if name == "fill_side_mismatch":
        return [trade("fill_side", e, 2 * books.signed(books.fills[e]), 2 * (books.fill_pnl(books.fills[e])
                      + float(books.fills[e]["fee"]) * books.fx(books.fills[e]["account"], books.fills[e]["currency"])))
                for e in target["exec_ids"]]
    if name == "fill_account_mismatch":
        return [trade("fill_account", e, None, books.fill_pnl(books.fills[e]), firm_value=target["fill_account"],
                      broker_value=target["order_account"]) for e in target["exec_ids"]]
    if name == "limit_breach":
        limit = Decimal(target["limit_price"])
        through = [e for e in target["exec_ids"]
                   if (books.fills[e]["price"] > limit if target["side"] == "BUY" else books.fills[e]["price"] < limit)]
        assert through
        return [trade("limit_price", e, books.fills[e]["price"] - limit,
                      float(books.signed(books.fills[e]) * (limit - books.fills[e]["price"]))
                      * books.fx(books.fills[e]["account"], books.fills[e]["currency"])) for e in through]
    if name in ("position_off_at_broker", "unrecorded_split"):
        return positions(RECONCILIATION_FAULTS[name][1])
    if name == "cash_off_at_broker":
        return cash("cash")
    if name == "unrecorded_dividend":
        return cash("corporate action suspected", symbol=target["symbol"])
    if name == "fx_rate_shift":
        # The manifest's amounts are against the clean rate; the reconciliation measures the move from
        # the previous close, which the clean rate itself moved from by a fraction of a percent.
        return [{"rule": "fx_rate_move", "account": account, "reference": target["pair"],
                 "impact_base": pytest.approx(amount, rel=0.05)} for account, amount in pnl.items()]
    if name == "broker_mv_mismatch":
        account, symbol = target["account"], target["symbol"]
        return [{"rule": "broker_market_value", "account": account, "symbol": symbol,
                 "difference": -target["market_value_error"],
                 "impact_base": -target["market_value_error"] * books.fx(account, books.currency[symbol])}]
    if name == "broker_price_off":
        account, symbol = target["account"], target["symbol"]
        return [{"rule": "broker_price", "account": account, "symbol": symbol,
                 "difference": target["firm_mark"] - target["broker_price"],
                 "impact_base": -target["broker_minus_firm_market_value"] * books.fx(account, books.currency[symbol])}]
    raise AssertionError(f"no expectation written for {name}")


def _matches(row: dict, expected: dict) -> bool:
    for key, value in expected.items():
        if key in ("difference", "impact_base"):
            continue
        if row.get(key) != value:
            return False
    return True


# --------------------------------------------------------------------------- tests


def test_the_walk_covers_every_reconciliation_fault_of_the_catalogue():
    reconciliation = {name for name, f in FAULTS.items() if 5 <= f.invariant <= 10}
    assert reconciliation == set(RECONCILIATION_FAULTS)


def test_clean_data_with_a_split_and_a_dividend_has_no_break_and_the_pnl_is_published(base):
    actions = {a["action"] for a in base["manifest"]["corporate_actions"]}
    assert actions == {"SPLIT", "CASH_DIVIDEND"}
    for day, build in base["builds"].items():
        assert build.returncode == 0, build.output[-3000:]
        assert build.failing("fail", "error", "warn", "skipped") == set(), day
        assert build.statuses["daily_pnl"] == "success"
    day = base["dates"][-1]
    for db, days in ((base["db"], base["dates"][:-1]), (base["clean_db"], base["dates"])):
        for d in days:
            assert breaks_of(db, d) == []
    with duckdb.connect(str(base["clean_db"]), read_only=True) as conn:
        explanation = pnl_explanation(conn, day)
        text = explain_pnl(conn, day)
    assert explanation.published and len(explanation.accounts) == 4
    for account in explanation.accounts:
        assert account.difference == pytest.approx(0, abs=1e-6)
        assert account.explaining == () and account.other == ()
        assert account.confidence == 1.0
    assert "is **published**" in text and "agree to the cent" in text


@pytest.mark.parametrize("fault", sorted(RECONCILIATION_FAULTS))
def test_a_reconciliation_fault_fails_its_check_and_shows_as_a_categorised_break_that_explains_the_pnl(
        fault, fault_runs):
    run = fault_runs[fault]
    rule, category, test_name = RECONCILIATION_FAULTS[fault]
    build, blocking = run["build"], FAULTS[fault].blocking_expected

    # The right check, with the right severity; a blocking break holds the P&L.
    if blocking:
        assert build.statuses[test_name] == "fail", build.output[-3000:]
        assert build.failing("fail", "error") == {test_name}
        assert build.statuses["daily_pnl"] == "skipped"
        assert build.returncode == 1
    else:
        assert build.statuses[test_name] == "warn", build.output[-3000:]
        assert build.failing("fail", "error", "skipped") == set(), build.output[-3000:]
        assert build.statuses["daily_pnl"] == "success"
        assert build.returncode == 0
    assert f"test {test_name} " in build.output

    # The break, its category, its two sides and its impact.
    rows = breaks_of(run["db"], run["day"])
    assert rows and all(r["category"] in CATEGORIES and r["description"] for r in rows)
    assert any(r["rule"] == rule and r["category"] == category and r["blocking"] == blocking for r in rows), rows
    books = Books(run["db"], run["day"])
    for expected in expected_breaks(fault, run["fault"], books):
        found = [r for r in rows if _matches(r, {k: v for k, v in expected.items() if k != "category"})
                 and r["category"] == expected.get("category", category)]
        assert len(found) == 1, (expected, rows)
        row = found[0]
        if expected.get("difference") is not None:
            wanted = expected["difference"]
            wanted = wanted if isinstance(wanted, type(pytest.approx(0))) else pytest.approx(float(wanted), abs=1e-6)
            assert float(row["difference"]) == wanted, (row, expected)
        assert row["impact_base"] == pytest.approx(expected["impact_base"], abs=0.01), (row, expected)
        if row["rule"] in ("position_quantity", "cash_balance") and row["category"] != category:
            raise AssertionError(f"{row} should be categorised {category}")

    # The P&L explanation accounts for the difference between the books' and the broker's P&L.
    with duckdb.connect(str(run["db"]), read_only=True) as conn:
        explanation = pnl_explanation(conn, run["day"])
        text = explain_pnl(conn, run["day"])
    assert explanation.published is not blocking
    for account in explanation.accounts:
        assert account.unexplained == pytest.approx(0, abs=0.01), (fault, account)
        assert 0.999 <= account.confidence <= 1.001
    moved = [a for a in explanation.accounts if abs(a.difference) >= 0.01]
    for account in moved:
        section = text.split(f"## {account.account} ")[1].split("\n## ")[0]
        assert f"| Difference | {account.difference:,.2f} |" in section
        assert "**Confidence: 100.0%**" in section
        for line in account.by_security():
            assert f"| {line.security} |" in section
    if fault in ("duplicate_fill", "orphan_confirm", "position_off_at_broker", "unrecorded_split",
                 "cash_off_at_broker", "unrecorded_dividend", "fx_rate_shift", "broker_mv_mismatch",
                 "broker_price_off"):
        assert moved, "this fault moves the broker's side away from the books"
    else:
        assert not moved, "the broker's statements agree with the books"
    if blocking:
        assert "is **held** by blocking breaks" in text


def test_a_duplicated_fill_is_explained_to_the_cent(fault_runs):
    run = fault_runs["duplicate_fill"]
    (expected,) = run["fault"]["expected_pnl_diff"]
    with duckdb.connect(str(run["db"]), read_only=True) as conn:
        account = pnl_explanation(conn, run["day"], expected["account"]).account(expected["account"])
        text = explain_pnl(conn, run["day"], expected["account"])
    # The broker never saw the copy: the books' P&L minus the broker's is the copy's P&L, all explained.
    assert account.difference == pytest.approx(expected["amount"], abs=0.005)
    assert account.explained == pytest.approx(expected["amount"], abs=0.005)
    assert abs(account.unexplained) < 0.005
    symbol = run["fault"]["expected_position_diff"][0]["symbol"]
    assert f"| {symbol} | duplicate | 2 | {expected['amount']:,.2f} |" in text
    assert f"| **Total** | | 2 | **{expected['amount']:,.2f}** |" in text
    assert run["fault"]["target"]["duplicate_exec_id"] in text


def test_explain_pnl_says_clearly_when_there_is_nothing_to_explain(base):
    with duckdb.connect(str(base["clean_db"]), read_only=True) as conn:
        with pytest.raises(ExplanationUnavailable, match="no reconciliation of 2026-10-06"):
            explain_pnl(conn, dt.date(2026, 10, 6))
        with pytest.raises(ExplanationUnavailable, match="no account 'ACC-NOPE'"):
            explain_pnl(conn, base["dates"][-1], "ACC-NOPE")
    with duckdb.connect() as empty:
        with pytest.raises(ExplanationUnavailable, match="run `cei run --date 2026-10-01` first"):
            explain_pnl(empty, START)


def test_confidence_is_the_share_of_the_difference_the_breaks_explain():
    from cei_assets.pnl_explain import Break

    def brk(impact):
        return Break("position_quantity", "position", False, "AAPL", "USD", None, impact, True, "x")

    half = AccountExplanation("A", "USD", reported_pnl=100.0, expected_pnl=60.0, explaining=(brk(20.0),), other=())
    assert (half.difference, half.explained, half.unexplained, half.confidence) == (40.0, 20.0, 20.0, 0.5)
    nothing = AccountExplanation("A", "USD", 10.0, 10.0, (), ())
    assert nothing.confidence == 1.0
    spurious = AccountExplanation("A", "USD", 10.0, 10.0, (brk(5.0),), ())
    assert spurious.confidence == 0.0


def test_the_cut_off_and_tolerances_come_from_the_rule_file_and_a_bad_file_is_named(base, tmp_path):
    """A later cut-off makes a late confirm no break; a bad value stops the reconciliation, named."""
    day = base["dates"][-1]
    settings_file = dbt_vars_for(day, START)["reconciliation"]
    assert settings_file["rules"]["late_confirm"]["cutoff_utc"] == "23:00"
    assert settings_file["rules"]["cash_balance"]["absolute"] == 0.01
    relaxed = json.loads(json.dumps(settings_file))
    relaxed["rules"]["late_confirm"]["cutoff_utc"] = "23:59"
    landing = tmp_path / "landing"
    generate_landing(landing, START, DAYS, fault="late_confirm", **SMALL)
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(base["db"], db)
    shutil.copytree(base["target"], tmp_path / "target", ignore=shutil.ignore_patterns("logs", "run", "compiled"))
    load_date(db, landing, day)
    build = dbt_build(db, day, tmp_path / "target", {"reconciliation": relaxed})
    assert build.returncode == 0 and build.statuses["no_late_confirms"] == "pass", build.output[-3000:]
    assert breaks_of(db, day) == []

    broken = json.loads(json.dumps(settings_file))
    broken["rules"]["cash_balance"]["absolute"] = "one cent"
    build = dbt_build(db, day, tmp_path / "target", {"reconciliation": broken})
    assert build.returncode == 1
    assert build.statuses["recon_orders"] == build.statuses["recon_confirms"] == "error"
    assert build.statuses["recon_breaks"] == "skipped" and build.statuses["daily_pnl"] == "skipped"
    assert ("asset_checks/reconciliation.yaml: rule 'cash_balance': absolute must be a number of at least 0, "
            "got 'one cent'") in build.output


@pytest.mark.slow
def test_a_duplicated_fill_fails_its_blocking_check_in_dagster_and_the_pnl_is_not_built(tmp_path):
    landing, home = tmp_path / "landing", tmp_path / "home"
    generate_landing(landing, START, 1, fault="duplicate_fill", **SMALL)
    second = START
    result = cei("run", "--date", second.isoformat(), home=home, landing=landing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no_duplicated_or_unbooked_fills" in result.stdout
    report = json.loads(cei("status", "--date", second.isoformat(), "--json", home=home).stdout)
    materialized = {a["key"]: a["materialized"] for a in report["assets"]}
    assert materialized["recon_breaks"] and materialized["positions"]
    assert not materialized["daily_pnl"]
    check = next(c for c in report["checks"] if c["name"] == "no_duplicated_or_unbooked_fills")
    assert check["passed"] is False and check["blocking"] and check["asset"] == "recon_breaks"
    assert "recorded twice" in check["description"]

    out = tmp_path / "explanation.md"
    explained = cei("explain-pnl", "--date", second.isoformat(), "--out", str(out), home=home)
    assert explained.returncode == 0, explained.stdout + explained.stderr
    assert cei("explain-pnl", "--date", "2026-13-01", home=home).returncode == 2
    text = out.read_text()
    assert "is **held** by blocking breaks: duplicate" in text
    assert manifest_of(landing)["fault"]["target"]["duplicate_exec_id"] in text


@pytest.mark.slow
def test_a_rerun_that_a_blocking_break_now_holds_leaves_no_pnl_of_the_earlier_run_in_the_warehouse(tmp_path):
    clean, faulty, home = tmp_path / "clean", tmp_path / "faulty", tmp_path / "home"
    generate_landing(clean, START, 1, **SMALL)
    generate_landing(faulty, START, 1, fault="duplicate_fill", **SMALL)
    first = cei("run", "--date", START.isoformat(), home=home, landing=clean)
    assert first.returncode == 0, first.stdout + first.stderr

    def pnl_rows() -> int:
        conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        try:
            return conn.execute("SELECT count(*) FROM books.daily_pnl WHERE business_date = ?", [START]).fetchone()[0]
        finally:
            conn.close()

    assert pnl_rows() > 0
    # The broker re-delivers the day with a fill booked twice: the P&L of the first run no longer
    # stands, and must not stay in the warehouse looking current.
    rerun = cei("run", "--date", START.isoformat(), home=home, landing=faulty)
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert "no_duplicated_or_unbooked_fills" in rerun.stdout
    assert pnl_rows() == 0
