"""The market-data checks on real prices: quiet on real markets, loud on injected faults.

Each public series of shared/data/real becomes warehouse tables in the landing shape (the raw
tables the ingestion writes, built here with its own ``ensure_raw_table``), and the REAL rule
files (asset_checks/rules/*.yaml) run through the engine, every trading date of every series:

- NVDA, ORCL, YHOO daily closes 1995-2015 -> ``raw.eod_prices``, one business_date per trading day
  (the ``Close`` column, which Yahoo publishes split-adjusted: no split appears in the series; a
  second run un-adjusts NVDA's four splits and feeds them as SPLIT corporate actions instead);
- index minute bars (Jan-Feb 2006) -> ``raw.quotes`` of two vendors (primary: bid/ask one point
  around each bar's close; secondary: two points around its open, a minute earlier), a mark at
  the exchange's close and a constant EURUSD rate;
- TAQ quotes of 2018-01-02/03 -> ``raw.quotes``: the cleaned file as one vendor, the raw file
  with vendor = exchange code ``EX``.

Then faults are injected into real days, the famous big-move days included. The false-alarm
counts are asserted against the table in docs/checks.md, so the documentation stays true.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import time
from pathlib import Path

import duckdb
import pytest

from asset_checks.engine import run_rules, run_rules_over_dates, table_context
from asset_checks.market_rules import _num as number
from asset_checks.rules import load_rules
from cei_assets.ingestion import ensure_raw_table
from cei_assets.landing import ALL_DATASETS

REAL = Path(os.environ.get("CEI_REAL_DATA", "/work/shared/data/real"))
DOCS = Path(__file__).resolve().parent.parent / "docs" / "checks.md"
pytestmark = pytest.mark.skipif(not (REAL / "nvda-1999-2014.csv").is_file(),
                                reason=f"the real market data samples are not at {REAL} (set CEI_REAL_DATA)")

DAILY_FILES = {"NVDA": "nvda-1999-2014.csv", "ORCL": "orcl-1995-2014.csv", "YHOO": "yhoo-1996-2015.csv"}
FAMOUS_DAYS = {dt.date(2004, 8, 6): "NVDA", dt.date(1997, 12, 9): "ORCL", dt.date(2008, 2, 1): "YHOO"}
# NVDA's splits (ex-dates), which Yahoo's Close column has already divided out.
NVDA_SPLITS = {dt.date(2000, 6, 27): 2.0, dt.date(2001, 9, 17): 2.0, dt.date(2006, 4, 7): 2.0, dt.date(2007, 9, 11): 1.5}
RULES = load_rules()


# ----------------------------------------------------------------------------- building warehouses


def _warehouse() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    for dataset in ALL_DATASETS:
        ensure_raw_table(conn, dataset)
    return conn


def _set_securities(conn, rows: list[tuple[str, str, str]]) -> None:
    """The securities master: (symbol, currency, MIC)."""
    conn.execute("DELETE FROM raw.securities")
    conn.executemany(
        "INSERT INTO raw.securities VALUES (?, ?, ?, 'real data', 1, 'reference/securities.csv', ?, now()::TIMESTAMP)",
        [(symbol, currency, mic, line) for line, (symbol, currency, mic) in enumerate(rows, start=2)],
    )


def _daily_warehouse(symbols: dict[str, str], unadjust_nvda_splits: bool = False, with_actions: bool = True):
    """Daily closes as marks: the first date of the union is the opening close, the others are
    one ``raw.eod_prices`` partition per trading date."""
    conn = _warehouse()
    union = " UNION ALL ".join(
        f"SELECT '{symbol}' AS symbol, Date AS d, Close::DOUBLE AS close FROM read_csv('{REAL / name}')"
        for symbol, name in symbols.items()
    )
    conn.execute(f"CREATE TEMP TABLE daily AS {union}")
    if unadjust_nvda_splits:
        splits = " UNION ALL ".join(f"SELECT DATE '{d}' AS ex_date, {r} AS ratio" for d, r in NVDA_SPLITS.items())
        conn.execute(f"""
            UPDATE daily SET close = close * coalesce((SELECT product(ratio) FROM ({splits}) AS s WHERE s.ex_date > daily.d), 1)
            WHERE symbol = 'NVDA'""")
        if with_actions:
            conn.executemany(
                "INSERT INTO raw.corporate_actions VALUES ('NVDA', ?, 'SPLIT', ?, NULL, NULL, ?, ?, 2, now()::TIMESTAMP)",
                [(d, r, d, f"{d}/corporate_actions.csv") for d, r in NVDA_SPLITS.items()],
            )
    (first,) = conn.execute("SELECT min(d) FROM daily").fetchone()
    conn.execute(f"""
        INSERT INTO raw.opening_eod_prices
        SELECT symbol, round(close, 6), 'USD', 'yahoo', 'opening/eod_prices.csv', row_number() OVER (ORDER BY symbol) + 1,
               now()::TIMESTAMP
        FROM daily WHERE d = DATE '{first}'""")
    conn.execute(f"""
        INSERT INTO raw.eod_prices
        SELECT symbol, round(close, 6), 'USD', 'yahoo', d, d || '/eod_prices.csv',
               row_number() OVER (PARTITION BY d ORDER BY symbol) + 1, now()::TIMESTAMP
        FROM daily WHERE d > DATE '{first}'""")
    return conn


def _periods(conn) -> list[tuple[list[str], list[dt.date]]]:
    """Runs of dates with the same live securities (a series starts or ends): the securities master
    of each run lists the securities that exist then, as the firm's master would."""
    spans = conn.execute("SELECT symbol, min(business_date), max(business_date) FROM raw.eod_prices GROUP BY 1").fetchall()
    dates = [r[0] for r in conn.execute("SELECT DISTINCT business_date FROM raw.eod_prices ORDER BY 1").fetchall()]
    periods: list[tuple[list[str], list[dt.date]]] = []
    for day in dates:
        live = sorted(s for s, first, last in spans if first <= day <= last)
        if periods and periods[-1][0] == live:
            periods[-1][1].append(day)
        else:
            periods.append((live, [day]))
    return periods


def _live_symbols(conn, day: dt.date) -> list[str]:
    return next(live for live, dates in _periods(conn) if day in dates)


def _run_daily(conn) -> dict[dt.date, list]:
    """Every eod_prices rule on every date: one batch per period of the securities master."""
    outcomes = {}
    for live, dates in _periods(conn):
        _set_securities(conn, [(s, "USD", "XNAS") for s in live])
        ctx = table_context(conn, "eod_prices", "raw.eod_prices", dates[0], ("symbol",))
        outcomes.update(run_rules_over_dates(conn, ctx, RULES["eod_prices"], dates))
    return outcomes


def _failures(outcomes: dict) -> tuple[list, list]:
    blocking, warnings = [], []
    for day, results in sorted(outcomes.items()):
        for outcome in results:
            if not outcome.passed:
                (blocking if outcome.blocking else warnings).append((day, outcome.check_name, outcome.description))
    return blocking, warnings


def _by_rule(failures) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, name, _ in failures:
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _documented(series: str) -> tuple[int, int, int]:
    """(dates, blocking failures, warnings) of a series in the false-alarm table of docs/checks.md."""
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] == series:
            return tuple(int(c.replace(",", "")) for c in cells[1:4])
    raise AssertionError(f"docs/checks.md has no false-alarm row for {series!r}")


def _report(series: str, dates: int, blocking: list, warnings: list) -> None:
    print(f"\n{series}: {dates:,} dates, {len(blocking)} blocking failure(s), {len(warnings)} warning(s) "
          f"{_by_rule(warnings)}")
    for day, name, text in warnings:
        print(f"  warn {day} {name}: {text[:220]}")
    assert _documented(series) == (dates, len(blocking), len(warnings)), (
        f"docs/checks.md must report the measured false alarms of {series}: "
        f"{dates:,} dates, {len(blocking)} blocking, {len(warnings)} warnings"
    )


def _money(value: float) -> str:
    return number(value)  # as the rules' sentences write numbers


# ----------------------------------------------------------------------------- daily closes


@pytest.fixture(scope="module")
def daily():
    conn = _daily_warehouse(DAILY_FILES)
    started = time.perf_counter()
    outcomes = _run_daily(conn)
    seconds = time.perf_counter() - started
    yield conn, outcomes, seconds
    conn.close()


def test_twenty_years_of_real_daily_closes_never_block_and_warn_only_on_the_great_moves(daily):
    conn, outcomes, seconds = daily
    blocking, warnings = _failures(outcomes)
    print(f"\n{len(outcomes):,} dates x {len(RULES['eod_prices'])} eod_prices rules in {seconds:.2f}s")
    assert len(outcomes) > 5000 and all(day in outcomes for day in FAMOUS_DAYS)
    assert not blocking, f"real closes blocked: {blocking[:5]}"
    for day, symbol in FAMOUS_DAYS.items():  # true events: a warning for a look, never a halt
        (move,) = [o for o in outcomes[day] if o.check_name == "price_move_unexplained"]
        assert not move.passed and not move.blocking and move.affected["symbol"] == [symbol], move.description
    # Every warning is either a great move of the price or the sample's universe shrinking from
    # three securities to one when the NVDA and ORCL files end (2015: a third of the usual marks).
    assert set(_by_rule(warnings)) <= {"price_move_unexplained", "row_volume"}
    assert all(day.year == 2015 for day, name, _ in warnings if name == "row_volume")
    _report("NVDA, ORCL, YHOO daily closes", len(outcomes), blocking, warnings)


def test_the_batched_dates_give_exactly_what_the_engine_gives_date_by_date(daily):
    conn, outcomes, _ = daily
    dates = sorted(outcomes)
    sample = sorted(set(FAMOUS_DAYS) | set(dates[:: max(1, len(dates) // 25)]) | {dates[0], dates[-1]})
    for day in sample:
        _set_securities(conn, [(s, "USD", "XNAS") for s in _live_symbols(conn, day)])
        ctx = table_context(conn, "eod_prices", "raw.eod_prices", day, ("symbol",))
        one_by_one = run_rules(conn, ctx, RULES["eod_prices"])
        seen = [(o.check_name, o.passed, o.description, o.failing_count, o.total_count) for o in one_by_one]
        batched = [(o.check_name, o.passed, o.description, o.failing_count, o.total_count) for o in outcomes[day]]
        assert seen == batched, day


def test_unadjusted_nvda_closes_with_their_splits_as_corporate_actions_stay_quiet_on_split_days():
    with_actions = _run_daily(_daily_warehouse({"NVDA": DAILY_FILES["NVDA"]}, unadjust_nvda_splits=True))
    blocking, warnings = _failures(with_actions)
    assert not blocking
    assert not [w for w in warnings if w[0] in NVDA_SPLITS], "a split fed as a corporate action explains the move"
    _report("NVDA unadjusted closes with splits as corporate actions", len(with_actions), blocking, warnings)

    # Without the corporate actions the split days are unexplained: they warn (the split hint in
    # the sentence), they do not block; the books' break shows in the position reconciliation.
    without = _daily_warehouse({"NVDA": DAILY_FILES["NVDA"]}, unadjust_nvda_splits=True, with_actions=False)
    blocking, warnings = _failures(_run_daily(without))
    assert not blocking
    split_warnings = {day: text for day, name, text in warnings if day in NVDA_SPLITS}
    assert set(split_warnings) == set(NVDA_SPLITS)
    assert "split missing from corporate_actions" in split_warnings[dt.date(2006, 4, 7)]


# ----------------------------------------------------------------------------- faults in real days


FAULT_DAYS = {
    **FAMOUS_DAYS,
    dt.date(1995, 6, 15): "ORCL",  # ORCL alone in the sample
    dt.date(2000, 3, 7): "NVDA",  # NVDA +42%
    dt.date(2003, 5, 9): "NVDA",  # NVDA +33%
    dt.date(2008, 10, 10): "YHOO",
    dt.date(2011, 8, 8): "ORCL",  # the August 2011 sell-off
    dt.date(2015, 6, 15): "YHOO",  # YHOO alone in the sample
}
SHIFTS = {"x10": 10.0, "x100": 100.0, "div100": 0.01, "div10": 0.1, "zero": 0.0, "negative": -1.0}


def _eod_outcomes_with(conn, day: dt.date, symbol: str, new_close: float) -> list:
    _set_securities(conn, [(s, "USD", "XNAS") for s in _live_symbols(conn, day)])
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("UPDATE raw.eod_prices SET close = ? WHERE business_date = ? AND symbol = ?", [new_close, day, symbol])
        ctx = table_context(conn, "eod_prices", "raw.eod_prices", day, ("symbol",))
        return run_rules(conn, ctx, RULES["eod_prices"])
    finally:
        conn.execute("ROLLBACK")


def _close(conn, day, symbol) -> float:
    return float(conn.execute("SELECT close FROM raw.eod_prices WHERE business_date = ? AND symbol = ?", [day, symbol]).fetchone()[0])


@pytest.mark.parametrize("day", sorted(FAULT_DAYS), ids=str)
@pytest.mark.parametrize("fault", list(SHIFTS))
def test_a_shifted_zero_or_negative_mark_on_a_real_day_is_blocked(daily, day, fault):
    conn, _, _ = daily
    symbol = FAULT_DAYS[day]
    close = _close(conn, day, symbol)
    bad = round(-close if fault == "negative" else close * SHIFTS[fault], 6)  # marks are DECIMAL(24,6)
    blocked = [o for o in _eod_outcomes_with(conn, day, symbol, bad) if not o.passed and o.blocking]
    assert blocked, f"{fault} of {symbol} on {day} was not blocked"
    assert any(symbol in o.description and _money(bad) in o.description for o in blocked), [o.description for o in blocked]
    assert "price_move_data_error" in {o.check_name for o in blocked}


COPY_DAYS = [day for day in sorted(FAULT_DAYS) if dt.date(1996, 4, 15) <= day <= dt.date(2014, 12, 31)]  # 2+ symbols


@pytest.mark.parametrize("day", COPY_DAYS, ids=str)
def test_a_price_copied_from_another_symbol_on_a_real_day_is_blocked(daily, day):
    conn, _, _ = daily
    symbol = FAULT_DAYS[day]
    previous = float(conn.execute(
        "SELECT close FROM raw.eod_prices WHERE symbol = ? AND business_date < ? ORDER BY business_date DESC LIMIT 1",
        [symbol, day]).fetchone()[0])
    others = {s: _close(conn, day, s) for s in _live_symbols(conn, day) if s != symbol}
    source, copied = max(others.items(), key=lambda item: abs(math.log(item[1] / previous)))
    # A copy that stays within a normal day's move of the symbol's own price is indistinguishable
    # from that move (and harmless to the same degree); the copies here move it by more than 10%.
    assert abs(copied / previous - 1) > 0.10
    blocked = [o for o in _eod_outcomes_with(conn, day, symbol, copied) if not o.passed and o.blocking]
    assert [o.check_name for o in blocked] == ["price_move_data_error"], [o.description for o in blocked]
    assert "copied price" in blocked[0].description and source in blocked[0].description
    assert symbol in blocked[0].description and _money(copied) in blocked[0].description


# ----------------------------------------------------------------------------- index minute bars


@pytest.fixture(scope="module")
def minute():
    conn = _warehouse()
    _set_securities(conn, [("SX5E", "EUR", "XETR")])
    conn.execute("INSERT INTO raw.accounts VALUES ('EU-MACRO', 'macro', 'USD', 'PB1', 'reference/accounts.csv', 2, now()::TIMESTAMP)")
    # Bars are stamped in exchange-local time (Europe/Berlin): 09:01-22:00 covers the Xetra session.
    conn.execute(f"""
        CREATE TEMP TABLE bars AS
        SELECT d, timezone('UTC', timezone('Europe/Berlin', d + t)) AS ts, o::DOUBLE AS open, c::DOUBLE AS close, v
        FROM read_csv('{REAL / 'index-2006-minute-bars.csv'}', header = true,
                      names = ['d', 't', 'o', 'h', 'l', 'c', 'v', 'oi'])""")
    conn.execute("""
        INSERT INTO raw.quotes
        SELECT ts, 'SX5E', close - 0.5, close + 0.5, greatest(v // 2, 1), greatest(v // 2, 1), 'primary', d,
               d || '/quotes_primary.csv', row_number() OVER (PARTITION BY d ORDER BY ts) + 1, now()::TIMESTAMP
        FROM bars ORDER BY ts""")
    conn.execute("""
        INSERT INTO raw.quotes
        SELECT ts - INTERVAL 59 SECOND, 'SX5E', open - 1, open + 1, 10, 10, 'secondary', d,
               d || '/quotes_secondary.csv', row_number() OVER (PARTITION BY d ORDER BY ts) + 1, now()::TIMESTAMP
        FROM bars ORDER BY ts""")
    # The mark: the close of the last bar at the Xetra close (17:30 Berlin).
    conn.execute("""
        INSERT INTO raw.eod_prices
        SELECT 'SX5E', arg_max(close, ts), 'EUR', 'index bars', d, d || '/eod_prices.csv', 2, now()::TIMESTAMP
        FROM bars WHERE timezone('Europe/Berlin', ts::TIMESTAMPTZ)::TIME <= TIME '17:30:00' GROUP BY d""")
    conn.execute("""
        INSERT INTO raw.fx_rates SELECT 'EURUSD', 1.2, d, d || '/fx_rates.csv', 2, now()::TIMESTAMP
        FROM (SELECT DISTINCT d FROM bars)""")
    yield conn
    conn.close()


def _run_table(conn, table: str, key_columns=()) -> dict:
    dates = [r[0] for r in conn.execute(f"SELECT DISTINCT business_date FROM raw.{table} ORDER BY 1").fetchall()]
    ctx = table_context(conn, table, f"raw.{table}", dates[0], tuple(key_columns))
    return run_rules_over_dates(conn, ctx, RULES[table], dates)


def test_two_months_of_real_index_minute_bars_pass_every_market_data_rule(minute):
    started = time.perf_counter()
    results = {table: _run_table(minute, table) for table in ("quotes", "eod_prices", "fx_rates")}
    print(f"\nminute bars: {len(results['quotes'])} dates x every quotes/eod_prices/fx_rates rule in "
          f"{time.perf_counter() - started:.2f}s")
    blocking, warnings = [], []
    for outcomes in results.values():
        b, w = _failures(outcomes)
        blocking += b
        warnings += w
    assert len(results["quotes"]) == 41 and not blocking, blocking[:5]
    # The statistical rules had history from the sixth date on: quiet all the same.
    last = {o.check_name: o for o in results["quotes"][max(results["quotes"])]}
    assert "previous" in last["row_volume"].description and "judge" not in last["quote_volume_per_symbol"].description
    _report("index minute bars, two vendors", len(results["quotes"]), blocking, warnings)


@pytest.mark.parametrize("day", [dt.date(2006, 1, 3), dt.date(2006, 1, 31), dt.date(2006, 2, 27)], ids=str)
@pytest.mark.parametrize("factor", [10.0, 0.01, 1.04])
def test_a_wrong_mark_of_a_quoted_security_is_blocked_against_its_own_last_quote(minute, day, factor):
    close = _close(minute, day, "SX5E")
    minute.execute("BEGIN TRANSACTION")
    try:
        minute.execute("UPDATE raw.eod_prices SET close = close * ? WHERE business_date = ?", [factor, day])
        ctx = table_context(minute, "eod_prices", "raw.eod_prices", day, ("symbol",))
        outcomes = {o.check_name: o for o in run_rules(minute, ctx, RULES["eod_prices"])}
    finally:
        minute.execute("ROLLBACK")
    quote = outcomes["eod_matches_last_quote"]
    assert not quote.passed and quote.blocking
    assert "SX5E" in quote.description and _money(close * factor) in quote.description
    if factor != 1.04:  # 4% off its quote, but a plausible move: only the quote can tell
        assert not outcomes["price_move_data_error"].passed


def test_a_vendor_three_percent_off_on_a_real_day_is_caught_and_real_noise_is_not(minute):
    day = dt.date(2006, 2, 15)
    minute.execute("BEGIN TRANSACTION")
    try:
        minute.execute("UPDATE raw.quotes SET bid = bid * 1.03, ask = ask * 1.03 WHERE business_date = ? AND vendor = 'secondary'", [day])
        ctx = table_context(minute, "quotes", "raw.quotes", day, ("vendor", "symbol", "ts"))
        outcomes = {o.check_name: o for o in run_rules(minute, ctx, RULES["quotes"])}
    finally:
        minute.execute("ROLLBACK")
    agreement = outcomes["vendor_agreement"]
    assert not agreement.passed and not agreement.blocking and "SX5E" in agreement.description
    assert [name for name, o in outcomes.items() if not o.passed] == ["vendor_agreement"]


# ----------------------------------------------------------------------------- TAQ quotes


def _taq_warehouse(raw: bool):
    conn = _warehouse()
    _set_securities(conn, [("XXX", "USD", "XNYS")])
    name = "taq-quotes-raw-2018-01-02_03.csv.gz" if raw else "taq-quotes-cleaned-by-highfrequency-2018-01-02_03.csv.gz"
    vendor = "EX" if raw else "'primary'"
    # The trading date is the New York date; the vendor's file order is kept in _source_line.
    conn.execute(f"""
        INSERT INTO raw.quotes
        SELECT timezone('UTC', DT), SYMBOL, BID, OFR, BIDSIZ, OFRSIZ, {vendor},
               timezone('America/New_York', DT)::DATE AS trading_date,
               trading_date || '/quotes_' || {vendor} || '.csv',
               row_number() OVER (PARTITION BY trading_date, {vendor} ORDER BY DT) + 1, now()::TIMESTAMP
        FROM read_csv('{REAL / name}') ORDER BY DT""")
    return conn


def test_the_cleaned_taq_quotes_pass_every_quote_rule():
    conn = _taq_warehouse(raw=False)
    outcomes = _run_table(conn, "quotes", ("vendor", "symbol", "ts"))
    blocking, warnings = _failures(outcomes)
    assert sorted(outcomes) == [dt.date(2018, 1, 2), dt.date(2018, 1, 3)]
    assert not blocking and not warnings, warnings
    _report("TAQ quotes cleaned by highfrequency", len(outcomes), blocking, warnings)


def test_the_raw_taq_quotes_are_flagged_for_zero_and_crossed_quotes_without_halting_anything():
    conn = _taq_warehouse(raw=True)
    outcomes = _run_table(conn, "quotes", ("vendor", "symbol", "ts"))
    blocking, warnings = _failures(outcomes)
    assert not blocking  # quote quality warns: the books take their marks from eod_prices
    for day, results in outcomes.items():
        by_name = {o.check_name: o for o in results}
        zero, crossed = conn.execute(
            "SELECT count_if(bid <= 0 OR ask <= 0), count_if(bid > ask) FROM raw.quotes WHERE business_date = ?", [day]
        ).fetchone()
        assert zero > 0 and crossed > 0
        assert not by_name["price_range_positive"].passed and by_name["price_range_positive"].failing_count == zero
        assert not by_name["crossed_quotes"].passed and by_name["crossed_quotes"].failing_count == crossed
        assert by_name["price_range_positive"].severity == by_name["crossed_quotes"].severity == "WARN"
        assert f"{crossed:,} of" in by_name["crossed_quotes"].description and "XXX" in by_name["crossed_quotes"].description
    print(f"\nraw TAQ warnings by rule: {_by_rule(warnings)}")
    for day, name, text in warnings:
        print(f"  warn {day} {name}: {text[:200]}")


def test_the_documented_false_alarm_table_names_every_measured_series():
    rows = re.findall(r"^\|\s*([^|]+?)\s*\|\s*[\d,]+\s*\|\s*\d+\s*\|\s*\d+\s*\|", DOCS.read_text(encoding="utf-8"), re.M)
    assert {"NVDA, ORCL, YHOO daily closes", "NVDA unadjusted closes with splits as corporate actions",
            "index minute bars, two vendors", "TAQ quotes cleaned by highfrequency"} <= set(rows)
