"""The market-data rule types (asset_checks/market_rules.py), one small warehouse each.

A clean case passes; a faulted case fails with a sentence that names the symbols and the numbers.
Times are UTC; 2026-10-01 is a Thursday, NYSE open 13:30-20:00 UTC.
"""

from __future__ import annotations

import datetime as dt
import textwrap

import duckdb
import pytest

from asset_checks.engine import run_rules, run_rules_over_dates, table_context
from asset_checks.market_rules import PriceMove, exchange_sessions
from asset_checks.rules import RuleFileError, load_rule_file, load_rules
from asset_checks.vocabulary import RULE_TYPES
from cei_assets.ingestion import ensure_raw_table
from cei_assets.landing import ALL_DATASETS

DAY = dt.date(2026, 10, 1)
JP_HOLIDAY = dt.date(2026, 10, 12)  # Sports Day: Tokyo closed, New York open
KEYS = {"quotes": ("vendor", "symbol", "ts"), "eod_prices": ("symbol",), "fx_rates": ("pair",)}


@pytest.fixture
def conn():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    for dataset in ALL_DATASETS:
        ensure_raw_table(connection, dataset)
    yield connection
    connection.close()


@pytest.fixture
def rule(tmp_path):
    def make(table: str, text: str):
        path = tmp_path / "rules.yaml"
        path.write_text(f"{table}:\n" + textwrap.indent(textwrap.dedent(text).strip() + "\n", "  "))
        (only,) = load_rule_file(path, RULE_TYPES)
        return only
    return make


def securities(conn, *rows):
    conn.execute("DELETE FROM raw.securities")
    for line, (symbol, currency, mic) in enumerate(rows, start=2):
        conn.execute("INSERT INTO raw.securities VALUES (?, ?, ?, 'tech', 1, 'securities.csv', ?, now()::TIMESTAMP)",
                     [symbol, currency, mic, line])


def add_quotes(conn, symbol, vendor="primary", mid="100", day=DAY, start="13:30:00", end="20:00:00", every=60,
               half_spread=0.01, where="TRUE"):
    """One quote every ``every`` seconds from start to end (UTC), mid given as SQL of ``i``."""
    conn.execute(f"""
        INSERT INTO raw.quotes
        SELECT ts, '{symbol}', m - {half_spread}, m + {half_spread}, 100, 100, '{vendor}', DATE '{day}',
               '{day}/quotes_{vendor}.csv', row_number() OVER (ORDER BY ts) + (SELECT count(*) FROM raw.quotes) + 1, now()::TIMESTAMP
        FROM (SELECT TIMESTAMP '{day} {start}' + to_seconds(i * {every}) AS ts, ({mid})::DOUBLE AS m, i
              FROM range(0, CAST(floor(epoch(TIMESTAMP '{day} {end}' - TIMESTAMP '{day} {start}') / {every}) AS BIGINT) + 1) AS r(i))
        WHERE {where}""")


def marks(conn, day, **closes):
    for line, (symbol, close) in enumerate(closes.items(), start=2):
        conn.execute("INSERT INTO raw.eod_prices VALUES (?, ?, 'USD', 'vendor', ?, ?, ?, now()::TIMESTAMP)",
                     [symbol, close, day, f"{day}/eod_prices.csv", line])


def run(conn, table, day, *rules):
    ctx = table_context(conn, table, f"raw.{table}", day, KEYS.get(table, ()))
    return run_rules(conn, ctx, list(rules))


def one(conn, table, day, rule_):
    (outcome,) = run(conn, table, day, rule_)
    return outcome


# ----------------------------------------------------------------------------- stale_feed


def test_stale_feed_passes_a_feed_updated_all_session(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"))
    add_quotes(conn, "NVDA", every=300)
    add_quotes(conn, "NVDA", "secondary", every=300)
    outcome = one(conn, "quotes", DAY, rule("quotes", "- stale_feed: {max_gap_minutes: 30}\n  blocking: false"))
    assert outcome.passed and outcome.total_count == 2, outcome.description


def test_stale_feed_names_the_feed_the_silence_and_its_times(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"), ("ORCL", "USD", "XNYS"))
    add_quotes(conn, "NVDA", every=60, where="ts < TIMESTAMP '2026-10-01 15:00:00' OR ts >= TIMESTAMP '2026-10-01 16:10:00'")
    add_quotes(conn, "NVDA", "secondary", every=60)
    add_quotes(conn, "ORCL", every=60, start="14:15:00")  # 45 minutes from the open to its first quote
    outcome = one(conn, "quotes", DAY, rule("quotes", "- stale_feed: {max_gap_minutes: 30}\n  blocking: false"))
    assert not outcome.passed and outcome.severity == "WARN" and outcome.failing_count == 2
    assert "NVDA/primary 71 min (14:59-16:10 UTC)" in outcome.description
    assert "ORCL/primary 45 min (13:30-14:15 UTC)" in outcome.description
    assert outcome.affected == {"symbol": ["NVDA", "ORCL"], "vendor": ["primary"]}


def test_stale_feed_counts_the_silence_from_the_last_quote_to_the_close(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"))
    add_quotes(conn, "NVDA", end="19:00:00")
    outcome = one(conn, "quotes", DAY, rule("quotes", "- stale_feed: {max_gap_minutes: 30}"))
    assert not outcome.passed and "NVDA/primary 60 min (19:00-20:00 UTC)" in outcome.description


def test_stale_feed_follows_each_exchange_session_with_its_lunch_break_and_holidays(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"), ("7203", "JPY", "XTKS"), ("ODD", "USD", "XFOO"))
    (morning, afternoon) = exchange_sessions("XTKS", DAY)  # Tokyo breaks for lunch
    for start, end in (morning, afternoon):
        add_quotes(conn, "7203", mid="2500", start=start.strftime("%H:%M:%S"), end=end.strftime("%H:%M:%S"))
    add_quotes(conn, "NVDA")
    add_quotes(conn, "ODD", end="14:00:00")  # no calendar for XFOO: not judged, and said so
    outcome = one(conn, "quotes", DAY, rule("quotes", "- stale_feed: {max_gap_minutes: 30}"))
    assert outcome.passed, outcome.description
    assert "1 security on exchange(s) without a calendar (XFOO) not judged" in outcome.description
    # On a Tokyo holiday the Tokyo security is expected to be silent.
    add_quotes(conn, "NVDA", day=JP_HOLIDAY)
    assert exchange_sessions("XTKS", JP_HOLIDAY) == ()
    outcome = one(conn, "quotes", JP_HOLIDAY, rule("quotes", "- stale_feed: {max_gap_minutes: 30}"))
    assert outcome.passed and "closed on 2026-10-12: XTKS" in outcome.description


# ----------------------------------------------------------------------------- every_security_quoted


def test_every_security_quoted_by_every_vendor_of_the_day(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"), ("ORCL", "USD", "XNYS"), ("AAPL", "USD", "XNAS"), ("7203", "JPY", "XTKS"))
    add_quotes(conn, "NVDA", every=600, day=JP_HOLIDAY)
    add_quotes(conn, "NVDA", "secondary", every=600, day=JP_HOLIDAY)
    add_quotes(conn, "ORCL", every=600, day=JP_HOLIDAY)  # not from the secondary vendor
    every = rule("quotes", "- every_security_quoted: true\n  blocking: false")
    outcome = one(conn, "quotes", JP_HOLIDAY, every)
    assert not outcome.passed and outcome.failing_count == 2 and outcome.total_count == 3  # Tokyo is closed
    assert "AAPL (primary, secondary), ORCL (secondary)" in outcome.description
    assert outcome.affected["symbol"] == ["AAPL", "ORCL"]
    primary_only = rule("quotes", "- every_security_quoted: {vendors: [primary]}")
    assert "AAPL (primary)" in one(conn, "quotes", JP_HOLIDAY, primary_only).description
    add_quotes(conn, "AAPL", every=600, day=JP_HOLIDAY)
    assert one(conn, "quotes", JP_HOLIDAY, primary_only).passed


# ----------------------------------------------------------------------------- vendor_agreement


def test_vendor_agreement_tolerates_noise_and_a_single_bad_quote(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"))
    add_quotes(conn, "NVDA", mid="100 + 0.02 * sin(i)")
    add_quotes(conn, "NVDA", "secondary", mid="100 + 0.02 * cos(i) + CASE WHEN i = 100 THEN 900 ELSE 0 END")
    outcome = one(conn, "quotes", DAY, rule("quotes", "- vendor_agreement: {max_bps: 100}"))
    assert outcome.passed, outcome.description


def test_vendor_agreement_catches_a_three_percent_disagreement(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"), ("ORCL", "USD", "XNYS"))
    add_quotes(conn, "NVDA", mid="100")
    add_quotes(conn, "NVDA", "secondary", mid="103")
    add_quotes(conn, "ORCL", mid="50")
    add_quotes(conn, "ORCL", "secondary", mid="50.01")
    outcome = one(conn, "quotes", DAY, rule("quotes", "- vendor_agreement: {max_bps: 100, bucket_minutes: 5}"))
    assert not outcome.passed and outcome.failing_count == 1 and outcome.affected["symbol"] == ["NVDA"]
    assert "NVDA (primary vs secondary: more than 100 bps apart in 78 of 78 5-min buckets, up to 296 bps" in outcome.description


def test_vendor_agreement_with_one_vendor_has_nothing_to_compare(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"))
    add_quotes(conn, "NVDA")
    outcome = one(conn, "quotes", DAY, rule("quotes", "- vendor_agreement: {max_bps: 100}"))
    assert outcome.passed and "Only 1 vendor quoted on 2026-10-01: nothing to compare" == outcome.description


# ----------------------------------------------------------------------------- price_spike


def test_price_spike_ignores_a_real_jump_and_catches_a_quote_that_jumps_and_comes_back(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"), ("ORCL", "USD", "XNYS"))
    # NVDA: noise and a 5% jump at 16:00 that stays (news). ORCL: one quote 5% off at 17:00:30.
    add_quotes(conn, "NVDA", mid="100 * (1 + 0.0005 * sin(i * 1.7)) * CASE WHEN i >= 150 THEN 1.05 ELSE 1 END", every=30)
    add_quotes(conn, "ORCL", mid="50 * (1 + 0.0005 * sin(i * 1.3)) * CASE WHEN i = 421 THEN 1.05 ELSE 1 END", every=30)
    spike = rule("quotes", "- price_spike: {max_z: 10, min_bps: 50}\n  blocking: false")
    outcome = one(conn, "quotes", DAY, spike)
    assert not outcome.passed and outcome.failing_count == 1 and outcome.affected["symbol"] == ["ORCL"]
    assert "ORCL/primary 52.5" in outcome.description and "at 17:00:30 UTC between 50" in outcome.description


def test_the_quote_rules_judge_alike_alone_and_together(conn, rule):
    # Run together, the quote rules read one aggregate of the quotes per symbol and bucket; each
    # rule must say exactly what it says when it runs alone.
    securities(conn, ("NVDA", "USD", "XNAS"), ("ORCL", "USD", "XNYS"), ("AAPL", "USD", "XNAS"))
    add_quotes(conn, "NVDA", mid="100", where="ts < TIMESTAMP '2026-10-01 15:00:00' OR ts >= TIMESTAMP '2026-10-01 16:10:00'")
    add_quotes(conn, "NVDA", "secondary", mid="103")
    add_quotes(conn, "ORCL", mid="50 * (1 + 0.0005 * sin(i * 1.3)) * CASE WHEN i = 211 THEN 1.05 ELSE 1 END")
    add_quotes(conn, "ORCL", "secondary", mid="50")
    texts = ["- stale_feed: {max_gap_minutes: 30}", "- every_security_quoted: true", "- vendor_agreement: {max_bps: 100}",
             "- price_spike: {max_z: 10, min_bps: 50}", "- quote_volume_per_symbol: {history: 10}",
             "- vendor_agreement: {max_bps: 100, bucket_minutes: 10}\n  name: vendor_agreement_10"]
    rules = [rule("quotes", text + "\n  blocking: false") for text in texts]
    together = run(conn, "quotes", DAY, *rules)
    alone = [one(conn, "quotes", DAY, r) for r in rules]
    shown = [(o.check_name, o.passed, o.description, o.failing_count, o.total_count, o.sample_rows) for o in together]
    assert shown == [(o.check_name, o.passed, o.description, o.failing_count, o.total_count, o.sample_rows) for o in alone]
    assert [o.passed for o in together] == [False, False, False, False, True, False], [o.description for o in together]


# ----------------------------------------------------------------------------- eod_matches_last_quote


def test_eod_matches_last_quote_uses_the_last_quote_at_the_close(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"), ("ORCL", "USD", "XNYS"), ("AAPL", "USD", "XNAS"))
    add_quotes(conn, "NVDA", mid="100")
    add_quotes(conn, "NVDA", mid="110", start="20:10:00", end="21:00:00")  # after-hours news: not the close
    add_quotes(conn, "ORCL", mid="50")
    marks(conn, DAY, NVDA=100.005, ORCL=500.0, AAPL=230.0)  # AAPL has no quotes: not judged here
    check = rule("eod_prices", "- eod_matches_last_quote: {max_bps: 300}")
    outcome = one(conn, "eod_prices", DAY, check)
    assert not outcome.passed and outcome.blocking and outcome.failing_count == 1 and outcome.total_count == 2
    assert "ORCL 500.00 vs bid/ask 49.99/50.01 at 20:00 UTC (89,998 bps off)" in outcome.description
    conn.execute("UPDATE raw.eod_prices SET close = 50.5 WHERE symbol = 'ORCL'")  # 1% from the quote
    assert one(conn, "eod_prices", DAY, check).passed


def test_eod_matches_last_quote_without_quotes_has_nothing_to_compare(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"))
    marks(conn, DAY, NVDA=100.0)
    outcome = one(conn, "eod_prices", DAY, rule("eod_prices", "- eod_matches_last_quote: {max_bps: 300}"))
    assert outcome.passed and outcome.description.startswith("No primary quotes on 2026-10-01 to compare its 1 marks")


# ----------------------------------------------------------------------------- price_move


DATA_ERRORS = ("- price_move: {flags: [non_positive, copied_price, decimal_shift, implausible_move], "
               "history: 60, min_history: 10}")
UNEXPLAINED = "- price_move: {flags: [unexplained_move], max_z: 8, min_move: 15%, history: 60, min_history: 10}\n  blocking: false"


@pytest.fixture
def history(conn):
    """Thirty dates of marks for A (~100), B (~40) and C (~300), gently moving; the last is DAYS[-1]."""
    securities(conn, ("A", "USD", "XNYS"), ("B", "USD", "XNYS"), ("C", "USD", "XNYS"))
    days = [dt.date(2026, 8, 3) + dt.timedelta(days=i) for i in range(45)]
    days = [d for d in days if d.weekday() < 5][:30]
    conn.execute("INSERT INTO raw.opening_eod_prices VALUES ('A', 99, 'USD', 'v', 'o.csv', 2, now()), "
                 "('B', 40, 'USD', 'v', 'o.csv', 3, now()), ('C', 300, 'USD', 'v', 'o.csv', 4, now())")
    for i, day in enumerate(days):
        wiggle = 1 + 0.01 * ((i * 7) % 5 - 2) / 2  # moves of up to 1%
        marks(conn, day, A=round(100 * wiggle, 2), B=round(40 / wiggle, 2), C=round(300 * wiggle, 2))
    return days


def test_price_move_passes_ordinary_days_including_the_first_against_the_opening_marks(conn, rule, history):
    for day in (history[0], history[-1]):
        for outcome in run(conn, "eod_prices", day, rule("eod_prices", DATA_ERRORS), rule("eod_prices", UNEXPLAINED)):
            assert outcome.passed and outcome.total_count == 3, outcome.description


@pytest.mark.parametrize("factor, words", [
    (10, "decimal shift, x10"), (100, "decimal shift, x100"), (0.01, "decimal shift, /100"),
    (0, "zero or negative"), (-1, "zero or negative"), (5, "x5.05 of the expected 99.50 in one day"),
])
def test_price_move_blocks_a_mark_that_cannot_be_right(conn, rule, history, factor, words):
    day = history[-1]
    conn.execute("UPDATE raw.eod_prices SET close = close * ? WHERE symbol = 'A' AND business_date = ?", [factor, day])
    blocking, warning = run(conn, "eod_prices", day, rule("eod_prices", DATA_ERRORS), rule("eod_prices", UNEXPLAINED))
    assert not blocking.passed and blocking.blocking and blocking.affected == {"symbol": ["A"]}
    assert words in blocking.description and "A " in blocking.description, blocking.description
    assert warning.passed  # reported once, by the blocking rule


def test_price_move_blocks_a_price_copied_from_another_symbol(conn, rule, history):
    day = history[-1]
    conn.execute("UPDATE raw.eod_prices SET close = (SELECT close FROM raw.eod_prices WHERE symbol = 'B' AND business_date = ?) "
                 "WHERE symbol = 'A' AND business_date = ?", [day, day])
    outcome = one(conn, "eod_prices", day, rule("eod_prices", DATA_ERRORS))
    assert not outcome.passed and "copied price" in outcome.description
    assert "A 39.80 after 99.50" in outcome.description and "-60.0%" in outcome.description and "equal to the mark of B" in outcome.description


def test_price_move_warns_on_a_large_unexplained_move_and_does_not_block_it(conn, rule, history):
    day = history[-1]
    conn.execute("UPDATE raw.eod_prices SET close = 140 WHERE symbol = 'A' AND business_date = ?", [day])
    blocking, warning = run(conn, "eod_prices", day, rule("eod_prices", DATA_ERRORS), rule("eod_prices", UNEXPLAINED))
    assert blocking.passed
    assert not warning.passed and not warning.blocking and warning.severity == "WARN"
    assert "A 140.00 after 99.50" in warning.description and "+40.7%" in warning.description and "sigma" in warning.description


def test_a_corporate_action_explains_a_move(conn, rule, history):
    day = history[-1]
    conn.execute("UPDATE raw.eod_prices SET close = (SELECT close / 2 FROM raw.eod_prices WHERE symbol = 'A' AND business_date = ?) "
                 "WHERE symbol = 'A' AND business_date = ?", [history[-2], day])  # exactly half of the previous close
    conn.execute("UPDATE raw.eod_prices SET close = close - 15 WHERE symbol = 'C' AND business_date = ?", [day])
    rules = [rule("eod_prices", DATA_ERRORS), rule("eod_prices", UNEXPLAINED)]
    _, warning = run(conn, "eod_prices", day, *rules)
    assert not warning.passed and warning.affected == {"symbol": ["A"]}  # -5% for C is ordinary
    assert "looks like a 2-for-1 split missing from corporate_actions" in warning.description
    conn.execute("INSERT INTO raw.corporate_actions VALUES ('A', ?, 'SPLIT', 2, NULL, NULL, ?, 'ca.csv', 2, now()), "
                 "('C', ?, 'CASH_DIVIDEND', NULL, 15, 'USD', ?, 'ca.csv', 3, now())", [day, day, day, day])
    for outcome in run(conn, "eod_prices", day, *rules):
        assert outcome.passed, outcome.description
    rows = {r["symbol"]: r for r in PriceMove.findings(conn, PriceMove.settings(rules[0]), day, day)}
    assert rows["A"]["split_ratio"] == 2 and rows["C"]["dividend"] == 15
    assert rows["C"]["expected"] == pytest.approx(rows["C"]["prev_close"] - 15)


def test_price_move_judges_many_dates_in_one_statement_exactly_as_date_by_date(conn, rule, history):
    conn.execute("UPDATE raw.eod_prices SET close = close * 10 WHERE symbol = 'B' AND business_date = ?", [history[12]])
    check = rule("eod_prices", DATA_ERRORS)
    ctx = table_context(conn, "eod_prices", "raw.eod_prices", history[0], ("symbol",))
    many = PriceMove.evaluate_many(check, ctx, conn, history)
    for day in history:
        assert many[day] == PriceMove.evaluate(check, table_context(conn, "eod_prices", "raw.eod_prices", day, ("symbol",)), conn)
    assert [d for d in history if not many[d][0]] == [history[12], history[13]]  # the day after is /10 again


# ----------------------------------------------------------------------------- every_security_marked


def test_every_security_has_a_mark(conn, rule):
    securities(conn, ("A", "USD", "XNYS"), ("B", "USD", "XNYS"))
    marks(conn, DAY, A=10.0)
    outcome = one(conn, "eod_prices", DAY, rule("eod_prices", "- every_security_marked: true"))
    assert not outcome.passed and outcome.blocking and "1 of 2 securities have no EOD mark on 2026-10-01: B" in outcome.description
    marks(conn, DAY, B=20.0)
    assert one(conn, "eod_prices", DAY, rule("eod_prices", "- every_security_marked: true")).passed


# ----------------------------------------------------------------------------- FX


def rates(conn, day, **pairs):
    for line, (pair, rate) in enumerate(pairs.items(), start=2):
        conn.execute("INSERT INTO raw.fx_rates VALUES (?, ?, ?, 'fx.csv', ?, now())", [pair, rate, day, line])


def test_fx_cross_pairs_equal_the_ratio_of_their_usd_legs(conn, rule):
    rates(conn, DAY, EURUSD=1.10, GBPUSD=1.25, JPYUSD=0.0067, EURGBP=0.88, USDJPY=149.25)
    check = rule("fx_rates", "- fx_cross_consistency: {max_bps: 10}")
    assert one(conn, "fx_rates", DAY, check).passed
    conn.execute("UPDATE raw.fx_rates SET rate = 0.8976 WHERE pair = 'EURGBP'")  # 2% off
    outcome = one(conn, "fx_rates", DAY, check)
    assert not outcome.passed and outcome.blocking
    assert "EURGBP 0.8976 vs 0.88 from EURUSD, GBPUSD (198.0 bps)" in outcome.description


def test_every_non_usd_currency_has_its_usd_leg(conn, rule):
    securities(conn, ("SAP", "EUR", "XETR"), ("VOD", "GBP", "XLON"), ("NVDA", "USD", "XNAS"))
    conn.execute("INSERT INTO raw.accounts VALUES ('JP1', 'macro', 'JPY', 'PB', 'a.csv', 2, now())")
    rates(conn, DAY, EURUSD=1.10, EURGBP=0.88)
    legs = one(conn, "fx_rates", DAY, rule("fx_rates", "- fx_usd_legs: true"))
    assert not legs.passed and legs.blocking and legs.failing_count == 2
    assert "2 of 3 non-USD currencies have no rate to USD on 2026-10-01: GBPUSD (for securities), JPYUSD (for accounts)" in legs.description
    cross = one(conn, "fx_rates", DAY, rule("fx_rates", "- fx_cross_consistency: {max_bps: 10}"))
    assert not cross.passed and "EURGBP has no EURUSD, GBPUSD leg to check it" in cross.description


def test_fx_move_blocks_a_rate_far_off_its_own_history(conn, rule):
    days = [d for d in (dt.date(2026, 8, 3) + dt.timedelta(days=i) for i in range(45)) if d.weekday() < 5][:30]
    conn.execute("INSERT INTO raw.opening_fx_rates VALUES ('EURUSD', 1.1, 'o.csv', 2, now())")
    for i, day in enumerate(days):
        rates(conn, day, EURUSD=round(1.1 * (1 + 0.002 * ((i * 3) % 5 - 2)), 6))
    check = rule("fx_rates", "- fx_move: {max_move: 5%, max_z: 10}")
    assert one(conn, "fx_rates", days[0], check).passed
    conn.execute("UPDATE raw.fx_rates SET rate = rate * 1.10 WHERE business_date = ?", [days[-1]])
    outcome = one(conn, "fx_rates", days[-1], check)
    assert not outcome.passed and outcome.blocking and "EURUSD 1.21 after 1.10 on 2026-09-10 (+9.6%" in outcome.description


# ----------------------------------------------------------------------------- statistics from history


def test_row_volume_needs_history_then_catches_a_collapse(conn, rule):
    days = [d for d in (dt.date(2026, 9, 1) + dt.timedelta(days=i) for i in range(20)) if d.weekday() < 5][:8]
    for i, day in enumerate(days):
        n = 100 + i % 3 if day != days[-1] else 20
        conn.execute(f"""INSERT INTO raw.fx_rates SELECT 'P' || lpad(i::VARCHAR, 3, '0') || 'USD', 1, DATE '{day}', 'f.csv', i, now()
                         FROM range({n}) AS r(i)""")
    check = rule("fx_rates", "- row_volume: {history: 20, min_history: 5, max_z: 6, min_factor: 2}\n  blocking: false")
    early = one(conn, "fx_rates", days[2], check)
    assert early.passed and "only 2 earlier partition(s)" in early.description
    assert one(conn, "fx_rates", days[-2], check).passed
    outcome = one(conn, "fx_rates", days[-1], check)
    assert not outcome.passed and not outcome.blocking
    assert "20 fx_rates rows of" in outcome.description and "median of 101 over the previous 7 partitions" in outcome.description


def test_quote_volume_per_symbol_catches_a_feed_that_dried_up(conn, rule):
    securities(conn, ("NVDA", "USD", "XNAS"), ("ORCL", "USD", "XNYS"))
    days = [d for d in (dt.date(2026, 9, 1) + dt.timedelta(days=i) for i in range(20)) if d.weekday() < 5][:7]
    for day in days:
        add_quotes(conn, "NVDA", day=day, every=120)
        add_quotes(conn, "ORCL", day=day, every=120 if day != days[-1] else 3600)
    check = rule("quotes", "- quote_volume_per_symbol: {history: 10, min_history: 5, max_z: 6, min_factor: 5}")
    outcome = one(conn, "quotes", days[-1], check)
    assert not outcome.passed and outcome.affected == {"symbol": ["ORCL"], "vendor": ["primary"]}
    assert "ORCL/primary 7 quotes vs a median of 196 (x0.04" in outcome.description
    assert one(conn, "quotes", days[-2], check).passed


# ----------------------------------------------------------------------------- rule files and engine


@pytest.mark.parametrize("body, words", [
    ("quotes:\n  - stale_feed: {max_gap: 30}\n", "does not know setting(s) max_gap"),
    ("quotes:\n  - stale_feed: {max_gap_minutes: -5}\n", "non-negative number"),
    ("eod_prices:\n  - price_move: {flags: [typo]}\n", "flags is a list among"),
    ("quotes:\n  - vendor_agreement: {min_share: lots}\n", "percentage"),
])
def test_a_bad_market_rule_names_the_file_and_the_line(tmp_path, body, words):
    path = tmp_path / "rules.yaml"
    path.write_text(body)
    with pytest.raises(RuleFileError) as error:
        load_rule_file(path, RULE_TYPES)
    assert str(error.value).startswith(f"{path}:2:") and words in str(error.value)


def test_the_shipped_market_rules_block_what_makes_the_books_wrong_and_warn_on_the_rest():
    shipped = {(r.table, r.name): r.blocking for rules in load_rules().values() for r in rules}
    assert shipped[("eod_prices", "eod_matches_last_quote")] and shipped[("eod_prices", "price_move_data_error")]
    assert shipped[("eod_prices", "every_security_marked")] and not shipped[("eod_prices", "price_move_unexplained")]
    assert shipped[("fx_rates", "fx_cross_consistency")] and shipped[("fx_rates", "fx_usd_legs")] and shipped[("fx_rates", "fx_move")]
    for name in ("stale_feed", "every_security_quoted", "vendor_agreement", "price_spike", "quote_volume_per_symbol", "row_volume"):
        assert shipped[("quotes", name)] is False, name


def test_running_many_dates_at_once_gives_what_the_engine_gives_date_by_date(conn):
    securities(conn, ("NVDA", "USD", "XNAS"), ("ORCL", "USD", "XNYS"))
    days = [DAY, dt.date(2026, 10, 2), dt.date(2026, 10, 5)]
    for day in days:
        add_quotes(conn, "NVDA", day=day, every=600)
        add_quotes(conn, "ORCL", day=day, every=600 if day != days[1] else 3600)
        add_quotes(conn, "ORCL", "secondary", day=day, every=600, mid="103" if day == days[2] else "100")
        marks(conn, day, NVDA=100.0, ORCL=100.0 if day != days[1] else 0.0)
    conn.execute("UPDATE raw.quotes SET bid = ask + 1 WHERE symbol = 'NVDA' AND business_date = ? AND _source_line % 7 = 0", [days[0]])
    for table in ("quotes", "eod_prices"):
        rules = load_rules()[table]
        ctx = table_context(conn, table, f"raw.{table}", days[0], KEYS[table])
        many = run_rules_over_dates(conn, ctx, rules, days)
        for day in days:
            single = run(conn, table, day, *rules)
            assert [(o.check_name, o.passed, o.description, o.failing_count, o.total_count) for o in single] == \
                   [(o.check_name, o.passed, o.description, o.failing_count, o.total_count) for o in many[day]]
        assert any(not o.passed for d in days for o in many[d])
