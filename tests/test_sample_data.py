"""The sample generator writes exactly the landing format, deterministically, with clean books,
and every fault of its catalogue is one narrow change the manifest describes exactly.

The checks here re-derive everything from the written files (the spec's invariants, the books'
roll-forward, NYSE and exchange calendars) rather than trusting the generator's own state.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import exchange_calendars as xc
import pandas as pd
import pytest

from cei_assets.sample_data import FAULTS, Fault, GenerationSummary, generate_landing

START = dt.date(2026, 11, 23)  # a Japanese holiday; the week holds US Thanksgiving and its half day
SMALL = dict(symbols=16, quotes_per_symbol=60, orders_per_day=25)
FAULT_START = dt.date(2026, 10, 1)
FAULT_SIZES = dict(symbols=12, quotes_per_symbol=80, orders_per_day=15)

# The landing format, version 1 (shared/spec/landing-format.md), written out independently.
SPEC_COLUMNS = {
    "reference/securities.csv": ["symbol", "currency", "exchange", "sector", "lot_size"],
    "reference/accounts.csv": ["account", "strategy", "base_currency", "prime_broker"],
    "opening/positions.csv": ["account", "symbol", "quantity", "avg_cost"],
    "opening/cash.csv": ["account", "currency", "balance"],
    "opening/eod_prices.csv": ["symbol", "close", "currency", "source"],
    "opening/fx_rates.csv": ["pair", "rate"],
}
DAILY_COLUMNS = {
    "quotes_primary.csv": ["ts", "symbol", "bid", "ask", "bid_size", "ask_size"],
    "quotes_secondary.csv": ["ts", "symbol", "bid", "ask", "bid_size", "ask_size"],
    "eod_prices.csv": ["symbol", "close", "currency", "source"],
    "fx_rates.csv": ["pair", "rate"],
    "orders.csv": ["order_id", "ts", "account", "symbol", "side", "quantity", "order_type", "limit_price"],
    "executions.csv": ["exec_id", "order_id", "ts", "account", "symbol", "side", "quantity", "price", "currency", "fee",
                       "broker", "venue"],
    "broker_trades.csv": ["broker", "broker_ref", "exec_id", "trade_date", "settle_date", "account", "symbol", "side",
                          "quantity", "price", "fee", "received_ts"],
    "broker_positions.csv": ["account", "symbol", "quantity", "close_price", "market_value", "currency"],
    "broker_cash.csv": ["account", "currency", "balance"],
    "corporate_actions.csv": ["symbol", "ex_date", "action", "ratio", "amount", "currency"],
}
SPEC_DATASETS = {"quotes", "eod_prices", "fx_rates", "orders", "executions", "broker_trades", "broker_positions",
                 "broker_cash", "corporate_actions"}
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
DATE = r"\d{4}-\d\d-\d\d"
DECIMAL = r"-?\d+\.\d+"
POSITIVE_INT = r"[1-9]\d*"


# --------------------------------------------------------------------------- helpers


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def D(text: str) -> Decimal:
    return Decimal(text)


def calendar(mic: str):
    return xc.get_calendar(mic, start="2025-06-01", end="2027-06-30")


def session_bounds(mic: str, day: dt.date) -> tuple[str, str] | None:
    cal = calendar(mic)
    label = pd.Timestamp(day)
    if not cal.is_session(label):
        return None
    fmt = "%Y-%m-%dT%H:%M:%S.000Z"
    return cal.session_open(label).strftime(fmt), cal.session_close(label).strftime(fmt)


def dates_of(landing: Path) -> list[str]:
    return sorted(p.name for p in landing.iterdir() if p.is_dir() and re.fullmatch(DATE, p.name))


def securities_of(landing: Path) -> pd.DataFrame:
    return read(landing / "reference" / "securities.csv").set_index("symbol")


def mid(frame: pd.DataFrame) -> pd.Series:
    return (frame["bid"].map(D) + frame["ask"].map(D)) / 2


def signed(frame: pd.DataFrame) -> pd.Series:
    quantity = frame["quantity"].map(int)
    return quantity.where(frame["side"] == "BUY", -quantity)


def roll_forward(landing: Path) -> dict[str, dict]:
    """The books the platform must derive: opening + corporate actions + signed fills, day by day."""
    positions = {(r.account, r.symbol): int(r.quantity) for r in read(landing / "opening" / "positions.csv").itertuples()}
    cash = {(r.account, r.currency): D(r.balance) for r in read(landing / "opening" / "cash.csv").itertuples()}
    books = {}
    for day in dates_of(landing):
        folder = landing / day
        start = dict(positions)  # holdings at the end of the previous date
        dividends = defaultdict(Decimal)
        flows = defaultdict(Decimal)
        fees = defaultdict(Decimal)
        for action in read(folder / "corporate_actions.csv").itertuples():
            for (account, symbol), quantity in start.items():
                if symbol != action.symbol or quantity == 0:
                    continue
                if action.action == "SPLIT":
                    positions[(account, symbol)] = quantity * int(D(action.ratio))
                else:
                    paid = quantity * D(action.amount)
                    cash[(account, action.currency)] = cash.get((account, action.currency), Decimal(0)) + paid
                    dividends[(account, symbol)] += paid
        fills = read(folder / "executions.csv")
        for fill, quantity in zip(fills.itertuples(), signed(fills)):
            key = (fill.account, fill.symbol)
            positions[key] = positions.get(key, 0) + quantity
            notional = quantity * D(fill.price)
            cash[(fill.account, fill.currency)] = cash.get((fill.account, fill.currency), Decimal(0)) - notional - D(fill.fee)
            flows[key] += notional
            fees[key] += D(fill.fee)
        books[day] = {"positions": dict(positions), "cash": dict(cash), "start": start, "dividends": dict(dividends),
                      "flows": dict(flows), "fees": dict(fees)}
    return books


def broker_positions(folder: Path) -> dict:
    return {(r.account, r.symbol): int(r.quantity) for r in read(folder / "broker_positions.csv").itertuples()}


def broker_cash(folder: Path) -> dict:
    return {(r.account, r.currency): D(r.balance) for r in read(folder / "broker_cash.csv").itertuples()}


def usd_rates(folder: Path) -> dict[str, Decimal]:
    rates = {r.pair: D(r.rate) for r in read(folder / "fx_rates.csv").itertuples()}
    return {"USD": Decimal(1), **{pair[:3]: rate for pair, rate in rates.items() if pair.endswith("USD")}}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> tuple[Path, GenerationSummary]:
    out = tmp_path_factory.mktemp("gen") / "landing"
    summary = generate_landing(out, START, 6, seed=3, **SMALL)
    return out, summary


@pytest.fixture(scope="module")
def books(landing):
    return roll_forward(landing[0])


# --------------------------------------------------------------------------- determinism and layout


def test_the_same_arguments_write_byte_identical_files_and_another_seed_does_not(tmp_path):
    a = generate_landing(tmp_path / "a", START, 2, seed=9, **SMALL).out
    b = generate_landing(tmp_path / "b", START, 2, seed=9, **SMALL).out
    c = generate_landing(tmp_path / "c", START, 2, seed=10, **SMALL).out
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    csv_files = [f for f in files if f.suffix == ".csv"]
    differing = [f for f in csv_files if (a / f).read_bytes() != (c / f).read_bytes()]
    assert len(differing) > len(csv_files) // 2


def test_the_landing_holds_exactly_the_spec_files_with_the_spec_columns(landing):
    out, summary = landing
    expected = set(SPEC_COLUMNS) | {"_generator.json"}
    expected |= {f"{day}/{name}" for day in map(str, summary.trading_dates) for name in DAILY_COLUMNS}
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == expected
    for relative in sorted(expected - {"_generator.json"}):
        raw = (out / relative).read_bytes()
        text = raw.decode("utf-8")  # UTF-8, LF line ends, a header row
        assert "\r" not in text and text.endswith("\n")
        columns = SPEC_COLUMNS.get(relative) or DAILY_COLUMNS[relative.split("/")[1]]
        assert text.split("\n")[0].split(",") == columns, relative


def test_values_are_written_in_the_spec_formats(landing):
    out, summary = landing
    def all_match(series, pattern):
        return series.str.fullmatch(pattern).all()
    positions = read(out / "opening" / "positions.csv")
    assert all_match(positions["quantity"], r"-?[1-9]\d*") and all_match(positions["avg_cost"], DECIMAL)
    assert (positions["quantity"].str.startswith("-")).any(), "the opening books hold short positions"
    for day in map(str, summary.trading_dates):
        folder = out / day
        for vendor in ("primary", "secondary"):
            quotes = read(folder / f"quotes_{vendor}.csv")
            assert all_match(quotes["ts"], TIMESTAMP)
            assert all_match(quotes["bid"], DECIMAL) and all_match(quotes["ask"], DECIMAL)
            assert all_match(quotes["bid_size"], POSITIVE_INT) and all_match(quotes["ask_size"], POSITIVE_INT)
        orders = read(folder / "orders.csv")
        assert all_match(orders["ts"], TIMESTAMP) and all_match(orders["quantity"], POSITIVE_INT)
        assert set(orders["side"]) <= {"BUY", "SELL"} and set(orders["order_type"]) == {"MARKET", "LIMIT"}
        assert (orders["limit_price"] == "").eq(orders["order_type"] == "MARKET").all()
        fills = read(folder / "executions.csv")
        assert all_match(fills["ts"], TIMESTAMP) and all_match(fills["quantity"], POSITIVE_INT)
        assert all_match(fills["price"], DECIMAL) and all_match(fills["fee"], DECIMAL)
        assert (fills["fee"].map(D) >= Decimal("0.01")).all() and set(fills["side"]) <= {"BUY", "SELL"}
        confirms = read(folder / "broker_trades.csv")
        assert all_match(confirms["trade_date"], DATE) and all_match(confirms["settle_date"], DATE)
        assert all_match(confirms["received_ts"], TIMESTAMP) and all_match(confirms["quantity"], POSITIVE_INT)
        statement = read(folder / "broker_positions.csv")
        assert all_match(statement["quantity"], r"-?[1-9]\d*") and all_match(statement["market_value"], DECIMAL)
        assert all_match(read(folder / "broker_cash.csv")["balance"], DECIMAL)
        assert all_match(read(folder / "fx_rates.csv")["rate"], DECIMAL)
        assert all_match(read(folder / "eod_prices.csv")["close"], DECIMAL)


def test_progress_reports_one_line_per_trading_date_with_its_counts(tmp_path):
    lines = []
    summary = generate_landing(tmp_path / "out", START, 3, seed=1, progress=lines.append, **SMALL)
    assert [line.split(":")[0] for line in lines] == [str(d) for d in summary.trading_dates]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d: [\d,]+ quotes, [\d,]+ orders, [\d,]+ fills", line) for line in lines)


def test_the_manifest_records_the_arguments_dates_and_corporate_actions(landing):
    out, summary = landing
    manifest = json.loads((out / "_generator.json").read_text())
    assert manifest["arguments"]["seed"] == 3 and manifest["arguments"]["start"] == START.isoformat()
    assert manifest["trading_dates"] == [str(d) for d in summary.trading_dates]
    assert manifest["opening_date"] == "2026-11-20"
    assert manifest["fault"] is None
    assert [(a["action"], a["ex_date"]) for a in manifest["corporate_actions"]] == [
        ("SPLIT", str(summary.trading_dates[1])), ("CASH_DIVIDEND", str(summary.trading_dates[2]))]


# --------------------------------------------------------------------------- reference data


def test_reference_data_spans_currencies_exchanges_accounts_and_brokers(landing):
    out, _ = landing
    securities = securities_of(out)
    assert {"USD", "EUR", "GBP", "JPY"} <= set(securities["currency"])
    assert {"XNYS", "XNAS", "XETR", "XLON", "XTKS"} <= set(securities["exchange"])
    assert {"AAPL", "MSFT", "NVDA", "SAP", "VOD", "7203"} <= set(securities.index)
    assert (securities.loc[securities["exchange"] == "XTKS", "lot_size"] == "100").all()
    assert (securities.loc[securities["exchange"] != "XTKS", "lot_size"] == "1").all()
    accounts = read(out / "reference" / "accounts.csv")
    assert len(accounts) >= 4 and accounts["account"].is_unique
    assert set(accounts["base_currency"]) - {"USD"}, "at least one non-USD base account"
    assert accounts["prime_broker"].nunique() == 2
    opening = read(out / "opening" / "positions.csv")
    held_currencies = set(securities.loc[opening["symbol"], "currency"])
    assert len(held_currencies) >= 3
    cash = read(out / "opening" / "cash.csv")
    for account in accounts["account"]:
        assert set(securities["currency"]) <= set(cash.loc[cash["account"] == account, "currency"])


def test_five_hundred_symbols_are_supported_with_unique_synthetic_tickers(tmp_path):
    out = generate_landing(tmp_path / "big", dt.date(2026, 1, 13), 1, symbols=500, quotes_per_symbol=3,
                           orders_per_day=5).out
    securities = read(out / "reference" / "securities.csv")
    assert len(securities) == 500 and securities["symbol"].is_unique


# --------------------------------------------------------------------------- calendars


def test_trading_dates_are_nyse_sessions_only(landing):
    _, summary = landing
    dates = [str(d) for d in summary.trading_dates]
    assert dates == ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27", "2026-11-30", "2026-12-01"]
    nyse = calendar("XNYS")
    assert all(nyse.is_session(pd.Timestamp(d)) for d in dates)


def test_the_us_half_day_after_thanksgiving_has_no_us_quotes_or_orders_after_the_early_close(landing):
    out, _ = landing
    securities = securities_of(out)
    us = set(securities.index[securities["currency"] == "USD"])
    folder = out / "2026-11-27"
    quotes = read(folder / "quotes_primary.csv")
    us_quotes = quotes[quotes["symbol"].isin(us)]
    assert len(us_quotes) and (us_quotes["ts"] < "2026-11-27T18:00:00.000Z").all()
    orders = read(folder / "orders.csv")
    assert (orders.loc[orders["symbol"].isin(us), "ts"] < "2026-11-27T18:00:00.000Z").all()


def test_a_security_whose_exchange_is_closed_has_no_quotes_no_orders_and_a_carried_mark(landing):
    out, _ = landing
    securities = securities_of(out)
    tokyo = set(securities.index[securities["exchange"] == "XTKS"])
    folder = out / "2026-11-23"  # Labour Thanksgiving Day in Japan; NYSE is open
    for vendor in ("primary", "secondary"):
        assert not tokyo & set(read(folder / f"quotes_{vendor}.csv")["symbol"])
    assert not tokyo & set(read(folder / "orders.csv")["symbol"])
    marks = read(folder / "eod_prices.csv").set_index("symbol")
    opening = read(out / "opening" / "eod_prices.csv").set_index("symbol")
    assert (marks.loc[sorted(tokyo), "source"] == "CARRIED").all()
    assert (marks.loc[sorted(tokyo), "close"] == opening.loc[sorted(tokyo), "close"]).all()


def test_a_uk_only_bank_holiday_has_no_london_quotes_but_frankfurt_trades(tmp_path):
    # 2026-05-04: Early May bank holiday in the UK (and a holiday in Japan); NYSE and Xetra are open.
    summary = generate_landing(tmp_path / "out", dt.date(2026, 5, 4), 1, seed=2, **SMALL)
    assert [str(d) for d in summary.trading_dates] == ["2026-05-04"]
    securities = securities_of(summary.out)
    folder = summary.out / "2026-05-04"
    quoted = set(read(folder / "quotes_primary.csv")["symbol"])
    assert not quoted & set(securities.index[securities["exchange"].isin(["XLON", "XTKS"])])
    assert set(securities.index[securities["exchange"] == "XETR"]) <= quoted
    manifest = json.loads((summary.out / "_generator.json").read_text())
    assert set(manifest["exchanges_closed"]["2026-05-04"]) == {"XLON", "XTKS"}


# --------------------------------------------------------------------------- invariants of clean data


def test_invariant_1_quotes_are_clean_within_their_exchange_session_and_never_silent_for_long(landing):
    out, summary = landing
    securities = securities_of(out)
    for day in map(str, summary.trading_dates):
        open_symbols = {s for s in securities.index if session_bounds(securities.at[s, "exchange"], dt.date.fromisoformat(day))}
        for vendor in ("primary", "secondary"):
            quotes = read(out / day / f"quotes_{vendor}.csv")
            assert (quotes != "").all().all(), "no empty values"
            bid, ask = quotes["bid"].map(D), quotes["ask"].map(D)
            assert ((bid > 0) & (bid < ask)).all()
            assert set(quotes["symbol"]) == open_symbols, "every security whose exchange is open is quoted"
            for symbol, rows in quotes.groupby("symbol", sort=False):
                opens, closes = session_bounds(securities.at[symbol, "exchange"], dt.date.fromisoformat(day))
                stamps = rows["ts"]
                assert stamps.is_monotonic_increasing, (day, vendor, symbol)
                assert stamps.iloc[0] > opens and stamps.iloc[-1] < closes, (day, vendor, symbol)
                assert stamps.str.startswith(day).all()
                times = pd.to_datetime(pd.concat([pd.Series([opens]), stamps, pd.Series([closes])]))
                session = times.iloc[-1] - times.iloc[0]
                assert times.diff().max() < session * 0.1, f"{symbol} silent too long on {day}"


def test_invariant_2_the_two_vendors_mids_agree_within_a_few_bps(landing):
    out, summary = landing
    for day in map(str, summary.trading_dates):
        primary = read(out / day / "quotes_primary.csv")
        secondary = read(out / day / "quotes_secondary.csv")
        for frame in (primary, secondary):
            frame["time"] = pd.to_datetime(frame["ts"])
            frame["mid"] = mid(frame).astype(float)
        matched = pd.merge_asof(secondary.sort_values("time"), primary.sort_values("time")[["time", "symbol", "mid"]],
                                on="time", by="symbol", suffixes=("", "_primary"), direction="backward")
        gap_bps = (matched["mid"] / matched["mid_primary"] - 1).abs() * 1e4
        assert gap_bps.notna().all() and gap_bps.max() < 5, day


def test_invariant_3_one_positive_mark_per_security_equal_to_the_last_primary_mid(landing):
    out, summary = landing
    securities = securities_of(out)
    previous = read(out / "opening" / "eod_prices.csv").set_index("symbol")
    for day in map(str, summary.trading_dates):
        marks = read(out / day / "eod_prices.csv")
        assert marks["symbol"].is_unique and set(marks["symbol"]) == set(securities.index)
        marks = marks.set_index("symbol")
        assert (marks["close"].map(D) > 0).all()
        assert (marks["currency"] == securities.loc[marks.index, "currency"]).all()
        quotes = read(out / day / "quotes_primary.csv")
        last = quotes.groupby("symbol").tail(1).set_index("symbol")
        for symbol in securities.index:
            if symbol in last.index:
                assert marks.at[symbol, "source"] == "PRIMARY_CLOSE"
                assert D(marks.at[symbol, "close"]) == (D(last.at[symbol, "bid"]) + D(last.at[symbol, "ask"])) / 2
            else:
                assert marks.at[symbol, "source"] == "CARRIED"
                assert marks.at[symbol, "close"] == previous.at[symbol, "close"]
        previous = marks


def test_invariant_4_rates_are_positive_and_cross_pairs_equal_the_ratio_of_their_usd_legs(landing):
    out, summary = landing
    currencies = set(securities_of(out)["currency"]) - {"USD"}
    for folder in [out / "opening"] + [out / str(d) for d in summary.trading_dates]:
        frame = read(folder / "fx_rates.csv")
        assert frame["pair"].is_unique
        rates = frame.set_index("pair")["rate"].map(D)
        assert (rates > 0).all()
        assert {f"{c}USD" for c in currencies} <= set(rates.index)
        assert 0.004 < rates["JPYUSD"] < 0.01, "USD per 1 JPY"
        assert abs(rates["EURGBP"] / (rates["EURUSD"] / rates["GBPUSD"]) - 1) < Decimal("1e-9")


def test_invariant_5_fills_belong_to_their_order_never_exceed_it_and_respect_limits(landing):
    out, summary = landing
    securities = securities_of(out)
    order_ids, partially_filled = set(), 0
    for day in map(str, summary.trading_dates):
        orders = read(out / day / "orders.csv").set_index("order_id")
        assert orders.index.is_unique and not order_ids & set(orders.index), "order ids are unique across days"
        order_ids |= set(orders.index)
        fills = read(out / day / "executions.csv")
        assert fills["exec_id"].is_unique and fills["order_id"].isin(orders.index).all()
        filled = fills.assign(q=fills["quantity"].map(int)).groupby("order_id")["q"].agg(["sum", "count"])
        assert set(filled.index) == set(orders.index), "every order is filled at least in part"
        assert filled["count"].between(1, 4).all()
        assert (filled["sum"] <= orders.loc[filled.index, "quantity"].map(int)).all()
        partially_filled += int((filled["sum"] < orders.loc[filled.index, "quantity"].map(int)).sum())
        for fill in fills.itertuples():
            order = orders.loc[fill.order_id]
            assert (fill.account, fill.symbol, fill.side) == (order.account, order.symbol, order.side)
            assert fill.currency == securities.at[fill.symbol, "currency"]
            assert fill.ts > order.ts
            opens, closes = session_bounds(securities.at[fill.symbol, "exchange"], dt.date.fromisoformat(day))
            assert opens < order.ts and fill.ts < closes
            assert int(fill.quantity) % int(securities.at[fill.symbol, "lot_size"]) == 0
            if order.order_type == "LIMIT":
                price, limit = D(fill.price), D(order.limit_price)
                assert price <= limit if fill.side == "BUY" else price >= limit
    assert partially_filled > 0


def test_fill_prices_are_near_the_quote_mid_and_fees_are_one_bp_of_notional(landing):
    out, summary = landing
    for day in map(str, summary.trading_dates):
        quotes = read(out / day / "quotes_primary.csv")
        quotes["time"] = pd.to_datetime(quotes["ts"])
        quotes["mid"] = mid(quotes).astype(float)
        fills = read(out / day / "executions.csv")
        fills["time"] = pd.to_datetime(fills["ts"])
        matched = pd.merge_asof(fills.sort_values("time"), quotes.sort_values("time")[["time", "symbol", "mid"]],
                                on="time", by="symbol", direction="backward")
        assert ((matched["price"].astype(float) / matched["mid"] - 1).abs() < 0.005).all()
        notional = fills["quantity"].map(D) * fills["price"].map(D)
        expected = (notional / 10_000).map(lambda x: max(Decimal("0.01"), x.quantize(Decimal("0.01"), "ROUND_HALF_UP")))
        assert (fills["fee"].map(D) == expected).all()


def test_invariant_6_every_fill_has_exactly_one_matching_timely_confirm_settling_t_plus_2(landing):
    out, summary = landing
    nyse = calendar("XNYS")
    for day in map(str, summary.trading_dates):
        fills = read(out / day / "executions.csv")
        confirms = read(out / day / "broker_trades.csv")
        assert confirms["broker_ref"].is_unique and confirms["exec_id"].is_unique
        assert sorted(confirms["exec_id"]) == sorted(fills["exec_id"])
        merged = fills.merge(confirms, on="exec_id", suffixes=("", "_broker"))
        for column in ("account", "symbol", "side", "quantity", "price", "fee", "broker"):
            assert (merged[column] == merged[f"{column}_broker"]).all(), column
        assert (merged["trade_date"] == day).all()
        settle = nyse.session_offset(pd.Timestamp(day), 2).date().isoformat()
        assert (merged["settle_date"] == settle).all()
        assert (merged["received_ts"] >= merged["ts"]).all()
        assert (merged["received_ts"] < f"{day}T23:00:00.000Z").all()


def test_invariants_7_and_8_positions_and_cash_roll_forward_exactly_to_the_brokers_statements(landing, books):
    out, summary = landing
    for day in map(str, summary.trading_dates):
        firm = books[day]
        assert broker_positions(out / day) == {k: v for k, v in firm["positions"].items() if v != 0}, day
        assert broker_cash(out / day) == firm["cash"], day


def test_books_stay_plausible_and_the_long_only_account_never_goes_short(landing, books):
    out, summary = landing
    last = books[str(summary.trading_dates[-1])]["positions"]
    assert all(q >= 0 for (account, _), q in last.items() if account == "ACC-EQ-LONG")
    opening = {(r.account, r.symbol): int(r.quantity) for r in read(out / "opening" / "positions.csv").itertuples()}
    assert max(abs(q) for q in last.values()) < 20 * max(abs(q) for q in opening.values())


def test_invariant_9_value_change_equals_market_value_change_less_trade_flows_plus_dividends_less_fees(landing, books):
    """Per account and currency: what the broker statements say the account made equals the P&L equation."""
    out, summary = landing
    securities = securities_of(out)
    previous_positions = read(out / "opening" / "positions.csv")
    previous_marks = read(out / "opening" / "eod_prices.csv").set_index("symbol")["close"].map(D)
    previous_values = defaultdict(Decimal)
    for r in previous_positions.itertuples():
        previous_values[(r.account, securities.at[r.symbol, "currency"])] += int(r.quantity) * previous_marks[r.symbol]
    previous_cash = {(r.account, r.currency): D(r.balance) for r in read(out / "opening" / "cash.csv").itertuples()}
    for day in map(str, summary.trading_dates):
        statement = read(out / day / "broker_positions.csv")
        values = defaultdict(Decimal)
        for r in statement.itertuples():
            values[(r.account, r.currency)] += D(r.market_value)
        cash = broker_cash(out / day)
        equation = defaultdict(Decimal)
        firm = books[day]
        for key, flow in firm["flows"].items():
            equation[(key[0], securities.at[key[1], "currency"])] -= flow + firm["fees"][key]
        for key, paid in firm["dividends"].items():
            equation[(key[0], securities.at[key[1], "currency"])] += paid
        for key in cash:
            made = (values[key] + cash[key]) - (previous_values[key] + previous_cash[key])
            assert made == values[key] - previous_values[key] + equation[key], (day, key)
        previous_values, previous_cash = values, cash


def test_invariant_10_broker_market_values_are_quantity_times_the_firms_mark(landing):
    out, summary = landing
    securities = securities_of(out)
    for day in map(str, summary.trading_dates):
        marks = read(out / day / "eod_prices.csv").set_index("symbol")["close"]
        for line in read(out / day / "broker_positions.csv").itertuples():
            assert D(line.market_value) == int(line.quantity) * D(line.close_price)
            assert line.close_price == marks[line.symbol]
            assert line.currency == securities.at[line.symbol, "currency"]


# --------------------------------------------------------------------------- corporate actions


def test_a_split_on_the_second_date_and_a_dividend_on_the_third_hit_long_and_short_holders(landing, books):
    out, summary = landing
    dates = [str(d) for d in summary.trading_dates]
    for day in dates[:1] + dates[3:]:
        assert read(out / day / "corporate_actions.csv").empty, "header only when there is no action"
    split = read(out / dates[1] / "corporate_actions.csv")
    dividend = read(out / dates[2] / "corporate_actions.csv")
    assert list(split[["action", "ex_date", "amount"]].iloc[0]) == ["SPLIT", dates[1], ""]
    assert split.at[0, "ratio"] in ("2", "3")
    assert list(dividend[["action", "ex_date", "ratio"]].iloc[0]) == ["CASH_DIVIDEND", dates[2], ""]
    assert D(dividend.at[0, "amount"]) > 0
    assert split.at[0, "symbol"] != dividend.at[0, "symbol"]
    securities = securities_of(out)
    assert dividend.at[0, "currency"] == securities.at[dividend.at[0, "symbol"], "currency"]

    split_holders = [q for (a, s), q in books[dates[1]]["start"].items() if s == split.at[0, "symbol"] and q]
    dividend_holders = [q for (a, s), q in books[dates[2]]["start"].items() if s == dividend.at[0, "symbol"] and q]
    assert any(q > 0 for q in split_holders)
    assert any(q > 0 for q in dividend_holders) and any(q < 0 for q in dividend_holders)

    # The price path drops by the ratio (by about the amount) at the open of the ex_date.
    def first_mid(day, symbol):
        quotes = read(out / day / "quotes_primary.csv")
        return mid(quotes[quotes["symbol"] == symbol].head(1)).iloc[0]

    def close(day, symbol):
        return D(read(out / day / "eod_prices.csv").set_index("symbol").at[symbol, "close"])

    symbol, ratio = split.at[0, "symbol"], int(split.at[0, "ratio"])
    assert abs(first_mid(dates[1], symbol) / (close(dates[0], symbol) / ratio) - 1) < Decimal("0.05")
    symbol, amount = dividend.at[0, "symbol"], D(dividend.at[0, "amount"])
    assert abs(first_mid(dates[2], symbol) / (close(dates[1], symbol) - amount) - 1) < Decimal("0.05")


def test_a_month_and_a_bit_of_data_has_two_splits_and_two_dividends_on_different_symbols(tmp_path):
    summary = generate_landing(tmp_path / "out", dt.date(2026, 3, 2), 24, seed=8, symbols=10, quotes_per_symbol=5,
                               orders_per_day=4)
    actions = summary.corporate_actions
    dates = [str(d) for d in summary.trading_dates]
    assert [(a["action"], dates.index(a["ex_date"])) for a in actions] == [
        ("SPLIT", 1), ("CASH_DIVIDEND", 2), ("SPLIT", 22), ("CASH_DIVIDEND", 23)]
    assert len({a["symbol"] for a in actions}) == 4
    books = roll_forward(summary.out)
    for day in dates:
        assert broker_positions(summary.out / day) == {k: v for k, v in books[day]["positions"].items() if v}
        assert broker_cash(summary.out / day) == books[day]["cash"]


# --------------------------------------------------------------------------- arguments and the output folder


def test_bad_arguments_are_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="days"):
        generate_landing(tmp_path / "a", START, 0)
    with pytest.raises(ValueError, match="unknown fault 'no_such_fault'.*duplicate_fill"):
        generate_landing(tmp_path / "b", START, 1, fault="no_such_fault")
    with pytest.raises(ValueError, match="not one of the generated trading dates"):
        generate_landing(tmp_path / "c", START, 2, fault="late_confirm", fault_date=dt.date(2026, 11, 26))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_a_folder_that_is_not_a_generator_output_is_never_written_into(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        generate_landing(tmp_path, START, 1, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_a_previous_output_is_overwritten_cleanly(tmp_path):
    generate_landing(tmp_path / "out", START, 3, seed=1, fault="missing_file", **SMALL)
    generate_landing(tmp_path / "out", START, 1, seed=2, **SMALL)
    generate_landing(tmp_path / "fresh", START, 1, seed=2, **SMALL)
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(tmp_path / "fresh")) for p in (tmp_path / "fresh").rglob("*") if p.is_file())
    assert all((tmp_path / "out" / f).read_bytes() == (tmp_path / "fresh" / f).read_bytes() for f in files)


def test_two_hundred_symbols_with_two_thousand_quotes_each_write_eight_hundred_thousand_quote_rows(tmp_path):
    # 2026-01-13: every exchange is open, so 200 symbols x 2,000 quotes x 2 vendors.
    summary = generate_landing(tmp_path / "out", dt.date(2026, 1, 13), 1, symbols=200, quotes_per_symbol=2_000)
    rows = sum(sum(1 for _ in path.open()) - 1 for path in (summary.out / "2026-01-13").glob("quotes_*.csv"))
    assert rows == summary.quote_rows == 800_000


# --------------------------------------------------------------------------- the fault catalogue


def test_the_catalogue_covers_every_invariant_and_the_file_level_with_well_formed_entries():
    assert {f.invariant for f in FAULTS.values()} == set(range(11))
    for name, entry in FAULTS.items():
        assert isinstance(entry, Fault) and entry.name == name
        assert entry.datasets and set(entry.datasets) <= SPEC_DATASETS, name
        assert entry.summary.endswith(".") and isinstance(entry.blocking_expected, bool)
    required = """missing_file malformed_value missing_column unreadable_encoding null_bid crossed_quote zero_price
        negative_price quote_ts_outside_date quote_out_of_order missing_symbol_quotes stale_feed decimal_shift_quotes
        copied_price vendor_disagreement eod_mark_missing eod_mark_duplicate eod_mark_zero eod_mark_decimal_shift
        price_spike_unexplained fx_negative_rate fx_cross_inconsistent fx_missing_leg orphan_fill overfill
        fill_side_mismatch fill_account_mismatch limit_breach missing_confirm late_confirm confirm_price_off
        confirm_quantity_off confirm_fee_off duplicate_fill orphan_confirm position_off_at_broker unrecorded_split
        cash_off_at_broker unrecorded_dividend fx_rate_shift broker_mv_mismatch broker_price_off""".split()
    assert set(required) <= set(FAULTS)


@pytest.fixture(scope="module")
def clean_for_faults(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "landing"
    summary = generate_landing(out, FAULT_START, 3, seed=4, **FAULT_SIZES)
    return out, [str(d) for d in summary.trading_dates]


def _firm_values(landing: Path, day: str, books_of_day: dict) -> dict:
    """(account, symbol) -> (market value in security currency, in base currency) from the files."""
    securities = securities_of(landing)
    bases = read(landing / "reference" / "accounts.csv").set_index("account")["base_currency"]
    marks = read(landing / day / "eod_prices.csv").set_index("symbol")["close"].map(D)
    rates = usd_rates(landing / day)
    values = {}
    for (account, symbol), quantity in books_of_day["positions"].items():
        currency = securities.at[symbol, "currency"]
        local = quantity * marks[symbol]
        values[(account, symbol)] = (local, local * rates[currency] / rates[bases[account]])
    return values


def _pnl_terms(landing: Path, day: str, books_of_day: dict) -> dict:
    """Per account, the part of the date's base-currency P&L converted at the date's rates."""
    securities = securities_of(landing)
    bases = read(landing / "reference" / "accounts.csv").set_index("account")["base_currency"]
    marks = read(landing / day / "eod_prices.csv").set_index("symbol")["close"].map(D)
    rates = usd_rates(landing / day)
    terms = defaultdict(Decimal)
    keys = set(books_of_day["positions"]) | set(books_of_day["flows"]) | set(books_of_day["dividends"])
    for account, symbol in keys:
        currency = securities.at[symbol, "currency"]
        local = (books_of_day["positions"].get((account, symbol), 0) * marks[symbol]
                 - books_of_day["flows"].get((account, symbol), 0) - books_of_day["fees"].get((account, symbol), 0)
                 + books_of_day["dividends"].get((account, symbol), 0))
        terms[account] += local * rates[currency] / rates[bases[account]]
    return terms


@pytest.mark.parametrize("which", ["last", "first"])
@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_changes_only_its_files_on_its_date_exactly_as_the_manifest_says(name, which, clean_for_faults,
                                                                                      tmp_path):
    clean, dates = clean_for_faults
    fault_date = dates[-1] if which == "last" else dates[0]
    out = tmp_path / "landing"
    generate_landing(out, FAULT_START, 3, seed=4, fault=name,
                     fault_date=None if which == "last" else dt.date.fromisoformat(fault_date), **FAULT_SIZES)
    record = json.loads((out / "_generator.json").read_text())["fault"]
    entry = FAULTS[name]
    assert (record["name"], record["date"], record["invariant"]) == (name, fault_date, entry.invariant)
    assert record["changes"] and record["blocking_expected"] == entry.blocking_expected

    # Only the named datasets of the fault date differ from the clean landing of the same seed.
    relative = {str(p.relative_to(clean)) for p in clean.rglob("*.csv")}
    differing = sorted(f for f in relative if not (out / f).exists() or (out / f).read_bytes() != (clean / f).read_bytes())
    assert differing == record["files_changed"]
    assert {f.split("/")[0] for f in differing} == {fault_date}
    stems = {"quotes" if Path(f).stem.startswith("quotes_") else Path(f).stem for f in differing}
    assert stems <= set(entry.datasets), f"{name} changed {stems}, declares {entry.datasets}"

    # Cell edits are recorded with their original and new text, at their row.
    edited_files = {c["file"] for c in record["changes"] if c["action"] != "modified"}
    for change in record["changes"]:
        if change["action"] == "modified" and change["file"] not in edited_files and "row" in change:
            before = read(clean / fault_date / change["file"]).iloc[change["row"]][change["column"]]
            after = read(out / fault_date / change["file"]).iloc[change["row"]][change["column"]]
            assert (before, after) == (change["original"], change["new"]), change

    if record["expected_position_diff"] is None:
        return
    # The breaks between the platform's roll-forward and the broker are exactly the announced ones.
    firm = roll_forward(out)[fault_date]
    folder = out / fault_date
    positions = {k: v for k, v in firm["positions"].items() if v}
    statement = broker_positions(folder)
    position_breaks = {k: positions.get(k, 0) - statement.get(k, 0) for k in set(positions) | set(statement)}
    assert {k: v for k, v in position_breaks.items() if v} == {
        (d["account"], d["symbol"]): d["quantity"] for d in record["expected_position_diff"]}
    balances = broker_cash(folder)
    cash_breaks = {k: firm["cash"].get(k, Decimal(0)) - balances.get(k, Decimal(0)) for k in set(firm["cash"]) | set(balances)}
    assert {k: v for k, v in cash_breaks.items() if v} == {
        (d["account"], d["currency"]): Decimal(str(d["amount"])) for d in record["expected_cash_diff"]}

    if record["expected_market_value_diff"] is None:
        return
    clean_books = roll_forward(clean)[fault_date]
    faulted, original = _firm_values(out, fault_date, firm), _firm_values(clean, fault_date, clean_books)
    moved = {}
    for key in set(faulted) | set(original):
        local = faulted.get(key, (0, 0))[0] - original.get(key, (0, 0))[0]
        base = faulted.get(key, (0, 0))[1] - original.get(key, (0, 0))[1]
        if local or abs(base) > Decimal("0.00005"):
            moved[key] = (local, base)
    announced = {(d["account"], d["symbol"]): (Decimal(str(d["amount"])), Decimal(str(d["amount_base"])))
                 for d in record["expected_market_value_diff"]}
    assert set(moved) == set(announced)
    for key, (local, base) in moved.items():
        assert local == announced[key][0] and abs(base - announced[key][1]) < Decimal("0.001"), key

    pnl_after, pnl_before = _pnl_terms(out, fault_date, firm), _pnl_terms(clean, fault_date, clean_books)
    pnl_moves = {a: pnl_after[a] - pnl_before[a] for a in set(pnl_after) | set(pnl_before)}
    pnl_moves = {a: v for a, v in pnl_moves.items() if abs(v) > Decimal("0.00005")}
    announced_pnl = {d["account"]: Decimal(str(d["amount"])) for d in record["expected_pnl_diff"]}
    assert set(pnl_moves) == set(announced_pnl)
    for account, move in pnl_moves.items():
        assert abs(move - announced_pnl[account]) < Decimal("0.001"), account


def test_faults_that_need_two_vendors_say_so_clearly_when_there_is_one(tmp_path):
    with pytest.raises(ValueError, match="second market-data vendor"):
        generate_landing(tmp_path / "out", FAULT_START, 1, fault="vendor_disagreement", vendors=("primary",),
                         **FAULT_SIZES)


def test_late_confirm_moves_only_the_received_time_past_the_cutoff(clean_for_faults, tmp_path):
    clean, dates = clean_for_faults
    generate_landing(tmp_path / "out", FAULT_START, 3, seed=4, fault="late_confirm", **FAULT_SIZES)
    before = read(clean / dates[-1] / "broker_trades.csv")
    after = read(tmp_path / "out" / dates[-1] / "broker_trades.csv")
    changed = (before != after)
    assert changed.to_numpy().sum() == 1 and changed["received_ts"].sum() == 1
    late = after.loc[changed["received_ts"], "received_ts"].iloc[0]
    assert f"{dates[-1]}T23:00:00.000Z" < late < f"{dates[-1]}T23:59:59.999Z"


def test_duplicate_fill_repeats_one_fill_under_a_new_exec_id_that_the_broker_never_confirmed(clean_for_faults, tmp_path):
    clean, dates = clean_for_faults
    generate_landing(tmp_path / "out", FAULT_START, 3, seed=4, fault="duplicate_fill", **FAULT_SIZES)
    before = read(clean / dates[-1] / "executions.csv")
    after = read(tmp_path / "out" / dates[-1] / "executions.csv")
    assert len(after) == len(before) + 1 and after.iloc[: len(before)].equals(before)
    extra = after.iloc[-1]
    twin = before[before["exec_id"] != extra["exec_id"]].drop(columns="exec_id")
    assert (twin == extra.drop("exec_id")).all(axis=1).sum() == 1
    confirms = read(tmp_path / "out" / dates[-1] / "broker_trades.csv")
    assert extra["exec_id"] not in set(confirms["exec_id"])
