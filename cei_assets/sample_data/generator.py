"""Deterministic sample landing data, written exactly in the landing format, version 1.

``generate_landing`` writes what the firm's feeds would drop (shared/spec/landing-format.md):
reference data, the opening books, and one folder per NYSE session with quotes from every
market-data vendor, EOD marks, FX rates, orders, fills, broker confirms and the prime broker's
position and cash statements. Clean output satisfies every invariant of the spec; a named
fault from ``faults.FAULTS`` can then be injected into one date's files, and the manifest
``OUT/_generator.json`` says exactly what was changed, so tests can assert the platform finds it.

How exactness is kept: every price, fee, dividend and cash amount is an integer number of
1e-4 currency units (``PRICE_SCALE``) and quantities are integers, so cash flows and market
values are exact; FX rates are integers of 1e-10. Nothing is formatted from a float.

How determinism is kept: all randomness comes from numpy generators seeded with
``[seed, stream, day]``; nothing reads the clock; every file is written in a fixed row order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import math
import re
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Callable, NamedTuple

import duckdb
import exchange_calendars as xc
import numpy as np
import pandas as pd

PRICE_SCALE = 10_000  # prices, fees, cash and market values: integer units of 1e-4
RATE_SCALE = 10**10  # FX rates: integer units of 1e-10, so crosses agree with legs to ~1e-10
MS_PER_DAY = 86_400_000
EPOCH = dt.date(1970, 1, 1)

MANIFEST_NAME = "_generator.json"
GENERATOR_ID = "cei_assets.sample_data"
LANDING_FORMAT_VERSION = 1
BOOKS_CALENDAR = "XNYS"  # the fund's trading calendar: one landing folder per NYSE session
BROKER_CUTOFF = dt.time(23, 0)  # the platform's default confirm cut-off (UTC on the trading date)
SETTLEMENT_LAG = 2  # T+2, counted in NYSE sessions

# A split on the 2nd trading date, a dividend on the 3rd, then again every 21 sessions, so a
# month of data exercises both.
SPLIT_DAY = 1
DIVIDEND_DAY = 2
ACTION_PERIOD = 21

# Random streams: separate generators so that, e.g., the number of quotes does not change the
# reference data, and the fault generator never disturbs the clean data.
STREAM_REFERENCE, STREAM_MARKET, STREAM_TRADING, STREAM_FX, STREAM_ACTIONS, STREAM_FAULT = range(6)

HEADERS: dict[str, list[str]] = {
    "securities": ["symbol", "currency", "exchange", "sector", "lot_size"],
    "accounts": ["account", "strategy", "base_currency", "prime_broker"],
    "positions": ["account", "symbol", "quantity", "avg_cost"],
    "cash": ["account", "currency", "balance"],
    "quotes": ["ts", "symbol", "bid", "ask", "bid_size", "ask_size"],
    "eod_prices": ["symbol", "close", "currency", "source"],
    "fx_rates": ["pair", "rate"],
    "orders": ["order_id", "ts", "account", "symbol", "side", "quantity", "order_type", "limit_price"],
    "executions": ["exec_id", "order_id", "ts", "account", "symbol", "side", "quantity", "price", "currency",
                   "fee", "broker", "venue"],
    "broker_trades": ["broker", "broker_ref", "exec_id", "trade_date", "settle_date", "account", "symbol", "side",
                      "quantity", "price", "fee", "received_ts"],
    "broker_positions": ["account", "symbol", "quantity", "close_price", "market_value", "currency"],
    "broker_cash": ["account", "currency", "balance"],
    "corporate_actions": ["symbol", "ex_date", "action", "ratio", "amount", "currency"],
}
DAILY_FILES = ("eod_prices", "fx_rates", "orders", "executions", "broker_trades", "broker_positions", "broker_cash",
               "corporate_actions")

USD_LEGS = ("EUR", "GBP", "JPY")  # every non-USD currency gets an XXXUSD rate
CROSS_PAIRS = (("EUR", "GBP"),)  # written as EURGBP = EURUSD / GBPUSD
OPENING_FX = {"EUR": 1.0850, "GBP": 1.2700, "JPY": 0.006700}
FX_DAILY_VOL = 0.004

_VENDOR_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------- formatting


def format_units(units: int, scale: int = PRICE_SCALE) -> str:
    """An integer of 1/scale units as a plain fixed-point number: never an exponent, never float noise."""
    places = len(str(scale)) - 1
    whole, frac = divmod(abs(int(units)), scale)
    return f"{'-' if units < 0 else ''}{whole}.{frac:0{places}d}"


def format_rate(units: int) -> str:
    return format_units(units, RATE_SCALE)


def parse_units(text: str, scale: int = PRICE_SCALE) -> int:
    """The exact integer of 1/scale units written in `text`; ValueError if it has more decimals."""
    value = Decimal(text.strip()) * scale
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} has more than {len(str(scale)) - 1} decimals")
    return int(value)


def units_to_decimal(units: int, scale: int = PRICE_SCALE) -> Decimal:
    return Decimal(int(units)) / scale


def date_start_ms(day: dt.date) -> int:
    return (day - EPOCH).days * MS_PER_DAY


def format_ts(ms: int) -> str:
    seconds, millis = divmod(int(ms), 1000)
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def parse_ts(text: str) -> int:
    moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (moment - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def cross_rate(base_usd: int, quote_usd: int) -> int:
    """BASEQUOTE from the two USD legs (rate units), exactly their ratio rounded half up at 1e-10."""
    return (2 * base_usd * RATE_SCALE + quote_usd) // (2 * quote_usd)


def write_csv(path: Path, header: list[str], rows) -> int:
    """Write rows of already formatted strings: UTF-8, LF line ends, no quoting needed (no commas)."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(header) + "\n")
        for row in rows:
            handle.write(",".join(row) + "\n")
            count += 1
    return count


# --------------------------------------------------------------------------- reference data


@dataclasses.dataclass(frozen=True)
class Security:
    symbol: str
    currency: str
    exchange: str
    sector: str
    lot_size: int
    tick: int  # price increment in units of 1e-4
    daily_vol: float
    half_spread_bps: float
    initial_price: int  # units: the close before the first trading date


@dataclasses.dataclass(frozen=True)
class Account:
    account: str
    strategy: str
    base_currency: str
    prime_broker: str
    long_only: bool


ACCOUNTS = (
    Account("ACC-EQ-LONG", "Global Equity Long Only", "USD", "GSCO", long_only=True),
    Account("ACC-EQ-LS", "US Equity Long/Short", "USD", "MSCO", long_only=False),
    Account("ACC-EU-LS", "European Equity Long/Short", "EUR", "GSCO", long_only=False),
    Account("ACC-GLOBAL-MACRO", "Global Macro", "GBP", "MSCO", long_only=False),
)

# The first securities are real names, interleaved so that any 5 of them cover every exchange
# and currency; beyond the list, synthetic names are made up.
KNOWN_SECURITIES = (
    ("AAPL", "USD", "XNAS", "Information Technology", 230.0),
    ("SAP", "EUR", "XETR", "Information Technology", 245.0),
    ("VOD", "GBP", "XLON", "Communication Services", 0.72),
    ("7203", "JPY", "XTKS", "Consumer Discretionary", 2800.0),
    ("JPM", "USD", "XNYS", "Financials", 240.0),
    ("MSFT", "USD", "XNAS", "Information Technology", 420.0),
    ("SIE", "EUR", "XETR", "Industrials", 190.0),
    ("HSBA", "GBP", "XLON", "Financials", 9.1),
    ("6758", "JPY", "XTKS", "Consumer Discretionary", 3400.0),
    ("XOM", "USD", "XNYS", "Energy", 112.0),
    ("NVDA", "USD", "XNAS", "Information Technology", 135.0),
    ("BMW", "EUR", "XETR", "Consumer Discretionary", 78.0),
    ("BP", "GBP", "XLON", "Energy", 4.2),
    ("ORCL", "USD", "XNYS", "Information Technology", 170.0),
    ("9984", "JPY", "XTKS", "Communication Services", 9000.0),
    ("ALV", "EUR", "XETR", "Financials", 300.0),
    ("AZN", "GBP", "XLON", "Health Care", 110.0),
    ("KO", "USD", "XNYS", "Consumer Staples", 68.0),
    ("AMZN", "USD", "XNAS", "Consumer Discretionary", 200.0),
    ("8306", "JPY", "XTKS", "Financials", 1800.0),
    ("SHEL", "GBP", "XLON", "Energy", 26.0),
    ("DTE", "EUR", "XETR", "Communication Services", 28.0),
    ("JNJ", "USD", "XNYS", "Health Care", 155.0),
    ("GOOGL", "USD", "XNAS", "Communication Services", 175.0),
)
EXCHANGE_CURRENCY = {"XNYS": "USD", "XNAS": "USD", "XETR": "EUR", "XLON": "GBP", "XTKS": "JPY"}
EXCHANGES = tuple(EXCHANGE_CURRENCY)
SYNTHETIC_EXCHANGE_CYCLE = ("XNYS", "XNAS", "XETR", "XLON", "XTKS", "XNYS", "XNAS")
SYNTHETIC_PREFIX = {"XNYS": "N", "XNAS": "Q", "XETR": "X", "XLON": "L"}
SYNTHETIC_PRICE_RANGE = {"USD": (20.0, 300.0), "EUR": (10.0, 200.0), "GBP": (1.0, 40.0), "JPY": (500.0, 8000.0)}
SECTORS = ("Information Technology", "Financials", "Health Care", "Industrials", "Energy", "Consumer Staples",
           "Consumer Discretionary", "Materials", "Utilities", "Communication Services", "Real Estate")
VENUES = {  # where fills execute: the primary market or a lit alternative of the region
    "XNYS": ("XNYS", "XNYS", "BATS", "EDGX", "ARCX"),
    "XNAS": ("XNAS", "XNAS", "BATS", "EDGX", "ARCX"),
    "XETR": ("XETR", "XETR", "CEUX", "TQEX"),
    "XLON": ("XLON", "XLON", "CEUX", "TQEX"),
    "XTKS": ("XTKS", "XTKS", "CHIJ"),
}
MIN_SYMBOLS = len(EXCHANGES)


def _tick_for(currency: str) -> int:
    # Yen prices move in 0.1; the other currencies here are quoted to 1e-4 so that spreads of a
    # few bps exist even on a 0.72 GBP share.
    return 1_000 if currency == "JPY" else 1


def make_securities(count: int, rng: np.random.Generator) -> list[Security]:
    known_symbols = {s[0] for s in KNOWN_SECURITIES}
    specs = list(KNOWN_SECURITIES[:count])
    synthetic_number = 0
    while len(specs) < count:
        exchange = SYNTHETIC_EXCHANGE_CYCLE[(len(specs) - len(KNOWN_SECURITIES)) % len(SYNTHETIC_EXCHANGE_CYCLE)]
        currency = EXCHANGE_CURRENCY[exchange]
        if exchange == "XTKS":
            symbol = str(1300 + synthetic_number)  # Tokyo codes are four digits
        else:
            n, letters = synthetic_number, ""
            for _ in range(3):
                n, digit = divmod(n, 26)
                letters = chr(ord("A") + digit) + letters
            symbol = SYNTHETIC_PREFIX[exchange] + letters
        synthetic_number += 1
        if symbol in known_symbols:
            continue
        low, high = SYNTHETIC_PRICE_RANGE[currency]
        price = float(np.exp(rng.uniform(math.log(low), math.log(high))))
        specs.append((symbol, currency, exchange, SECTORS[len(specs) % len(SECTORS)], price))
    securities = []
    for symbol, currency, exchange, sector, price in specs:
        tick = _tick_for(currency)
        level = price * (1 + rng.normal(0, 0.03))
        securities.append(Security(
            symbol=symbol, currency=currency, exchange=exchange, sector=sector,
            lot_size=100 if exchange == "XTKS" else 1, tick=tick,
            daily_vol=float(rng.uniform(0.010, 0.025)), half_spread_bps=float(rng.uniform(1.0, 3.0)),
            initial_price=max(20 * tick, int(round(level * PRICE_SCALE / tick)) * tick),
        ))
    return securities


# --------------------------------------------------------------------------- calendars


class Session(NamedTuple):
    open_ms: int
    close_ms: int
    break_start_ms: int | None
    break_end_ms: int | None


@functools.lru_cache(maxsize=64)
def _calendar(mic: str, first: dt.date, last: dt.date):
    # Always explicit bounds: the default bounds of exchange_calendars move with today's date,
    # which would make the output depend on when it was generated.
    return xc.get_calendar(mic, start=first.isoformat(), end=last.isoformat())


def _ms(value) -> int | None:
    if value is None or pd.isna(value):
        return None
    return int(round(pd.Timestamp(value).timestamp() * 1000))


class MarketCalendars:
    """Sessions of the books' calendar (NYSE) and of every exchange, in UTC milliseconds."""

    def __init__(self, first: dt.date, last: dt.date):
        self.sessions: dict[str, dict[dt.date, Session]] = {}
        for mic in sorted(set(EXCHANGES) | {BOOKS_CALENDAR}):
            schedule = _calendar(mic, first, last).schedule
            has_breaks = "break_start" in schedule.columns
            self.sessions[mic] = {
                label.date(): Session(
                    _ms(row.open), _ms(row.close),
                    _ms(row.break_start) if has_breaks else None, _ms(row.break_end) if has_breaks else None,
                )
                for label, row in zip(schedule.index, schedule.itertuples())
            }
        self.books_dates = sorted(self.sessions[BOOKS_CALENDAR])

    def is_open(self, mic: str, day: dt.date) -> bool:
        return day in self.sessions[mic]

    def session(self, mic: str, day: dt.date) -> Session:
        return self.sessions[mic][day]

    def books_dates_from(self, start: dt.date) -> list[dt.date]:
        return [d for d in self.books_dates if d >= start]

    def previous_books_date(self, day: dt.date) -> dt.date:
        earlier = [d for d in self.books_dates if d < day]
        return earlier[-1]

    def books_date_after(self, day: dt.date, sessions: int) -> dt.date:
        return self.books_dates[self.books_dates.index(day) + sessions]


def trading_calendars(start: dt.date, days: int) -> tuple[MarketCalendars, list[dt.date]]:
    """Calendars spanning the opening close, `days` NYSE sessions from `start`, and T+2 after them."""
    span = int(days * 1.6) + 40
    while True:
        calendars = MarketCalendars(start - dt.timedelta(days=20), start + dt.timedelta(days=span))
        upcoming = calendars.books_dates_from(start)
        if len(upcoming) >= days + SETTLEMENT_LAG and calendars.books_dates[0] < start:
            return calendars, upcoming[:days]
        span *= 2


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class GenerationSummary:
    """What `generate_landing` wrote."""

    out: Path
    trading_dates: tuple[dt.date, ...]
    opening_date: dt.date  # the close whose books and marks are in opening/
    quote_rows: int  # over every vendor and date
    order_rows: int
    execution_rows: int
    corporate_actions: tuple[dict, ...]
    fault: str | None
    fault_date: dt.date | None
    manifest_path: Path


@dataclasses.dataclass
class Fill:
    """One execution and its broker confirm; prices, fees in units of 1e-4."""

    exec_id: str
    order_id: str
    ts: int
    account: str
    symbol: str
    side: str
    quantity: int
    price: int
    currency: str
    fee: int
    broker: str
    venue: str
    broker_ref: str = ""
    received_ts: int = 0

    @property
    def signed_quantity(self) -> int:
        return self.quantity if self.side == "BUY" else -self.quantity

    @property
    def cash_flow(self) -> int:
        """What the fill does to cash: buys pay notional and fee, sells receive notional less fee."""
        notional = self.quantity * self.price
        return -notional - self.fee if self.side == "BUY" else notional - self.fee


@dataclasses.dataclass
class Order:
    order_id: str
    ts: int
    account: str
    symbol: str
    side: str
    quantity: int
    order_type: str
    limit_price: int | None


@dataclasses.dataclass
class CorporateAction:
    symbol: str
    ex_date: dt.date
    action: str  # SPLIT or CASH_DIVIDEND
    ratio: int | None
    amount: int | None  # units of 1e-4 per share
    currency: str
    holders: dict[str, int]  # account -> quantity at the end of the previous date

    def row(self) -> list[str]:
        return [self.symbol, self.ex_date.isoformat(), self.action,
                "" if self.ratio is None else str(self.ratio),
                "" if self.amount is None else format_units(self.amount), self.currency]

    def as_manifest(self) -> dict:
        return {
            "symbol": self.symbol, "ex_date": self.ex_date.isoformat(), "action": self.action,
            "ratio": self.ratio, "amount": None if self.amount is None else float(units_to_decimal(self.amount)),
            "currency": self.currency,
            "holders": [{"account": a, "quantity": q} for a, q in self.holders.items()],
        }


@dataclasses.dataclass
class PositionFlows:
    """Per account and symbol, what a trading date did besides moving prices (units of 1e-4)."""

    trade_cash_flow: int = 0  # buys notional - sells notional
    fees: int = 0
    dividends: int = 0


# --------------------------------------------------------------------------- market data


class DayMarket:
    """One trading date's primary price path for every security whose exchange is open.

    Kept in memory while the date is written, so fills can be priced at the quote mid of
    their timestamp and faults can find targets.
    """

    def __init__(self, open_indices: np.ndarray, sessions: list[Session], ts: np.ndarray, mid: np.ndarray,
                 half: np.ndarray):
        self.open_indices = open_indices  # security indices, in reference order
        self.row_of = {int(i): r for r, i in enumerate(open_indices)}
        self.sessions = sessions
        self.ts = ts  # (symbols, quotes) int64 ms, non-decreasing per row
        self.mid = mid  # (symbols, quotes) int64 units
        self.half = half  # (symbols, quotes) int64 units: half the bid-ask spread

    def quote_at(self, security_index: int, ts_ms: int) -> tuple[int, int]:
        """(mid, half spread) of the last primary quote at or before ts (the first if none yet)."""
        row = self.row_of[security_index]
        at = max(0, int(np.searchsorted(self.ts[row], ts_ms, side="right")) - 1)
        return int(self.mid[row, at]), int(self.half[row, at])

    def close(self, security_index: int) -> int:
        return int(self.mid[self.row_of[security_index], -1])


def simulate_primary_path(rng: np.random.Generator, securities: list[Security], open_indices: np.ndarray,
                          sessions: list[Session], start_price: np.ndarray, quotes: int) -> DayMarket:
    """A random walk per security over its session: quote times spread evenly with jitter."""
    n = len(open_indices)
    vol = np.array([securities[i].daily_vol for i in open_indices])
    tick = np.array([securities[i].tick for i in open_indices], dtype=np.int64)[:, None]
    bps = np.array([securities[i].half_spread_bps for i in open_indices])[:, None]
    opens = np.array([s.open_ms for s in sessions], dtype=np.int64)[:, None]
    closes = np.array([s.close_ms for s in sessions], dtype=np.int64)[:, None]

    # One quote per equal slice of the session, at a random point in its slice: no long
    # silences, strictly inside the session (so inside the UTC date), non-decreasing.
    slices = (closes - opens) / quotes
    ts = opens + np.floor((np.arange(quotes)[None, :] + rng.random((n, quotes))) * slices).astype(np.int64)
    np.clip(ts, opens + 1, closes - 1, out=ts)

    steps = rng.standard_normal((n, quotes)) * (vol / math.sqrt(quotes))[:, None]
    path = start_price[:, None] * np.exp(np.cumsum(steps, axis=1))
    mid = np.maximum(np.rint(path / tick).astype(np.int64), 20) * tick
    del steps, path
    half_ticks = np.rint(mid / tick * bps * 1e-4 * rng.uniform(0.7, 1.3, (n, quotes))).astype(np.int64)
    half = np.maximum(half_ticks, 1) * tick  # bid < ask always: never locked, never crossed
    return DayMarket(open_indices, sessions, ts, mid, half)


def vendor_quotes(rng: np.random.Generator, market: DayMarket, securities: list[Security], primary: bool):
    """Quote arrays of one vendor: the primary's own path, or another vendor's view of it."""
    n, quotes = market.mid.shape
    tick = np.array([securities[i].tick for i in market.open_indices], dtype=np.int64)[:, None]
    lot = np.array([max(100, securities[i].lot_size) for i in market.open_indices], dtype=np.int64)[:, None]
    if primary:
        ts, mid, half = market.ts, market.mid, market.half
    else:
        # Another vendor sees the same book a moment later (before the primary's next quote) and
        # within a couple of bps: vendors agree when matched as of the same time.
        closes = np.array([s.close_ms for s in market.sessions], dtype=np.int64)[:, None]
        following = np.concatenate([market.ts[:, 1:], closes - 1], axis=1)
        ts = market.ts + np.floor(rng.random((n, quotes)) * (following - market.ts)).astype(np.int64)
        skew = np.clip(rng.normal(0.0, 0.5e-4, (n, quotes)), -1.5e-4, 1.5e-4)
        mid = np.maximum(np.rint(market.mid * (1 + skew) / tick).astype(np.int64), 20) * tick
        half = np.maximum(np.rint(market.half / tick * rng.uniform(0.8, 1.2, (n, quotes))).astype(np.int64), 1) * tick
    bid_size = rng.integers(1, 51, (n, quotes)) * lot
    ask_size = rng.integers(1, 51, (n, quotes)) * lot
    return ts, mid - half, mid + half, bid_size, ask_size


def write_quotes(conn: duckdb.DuckDBPyConnection, path: Path, symbols: list[str], open_indices: np.ndarray,
                 ts, bid, ask, bid_size, ask_size) -> int:
    """One vendor file, rows in time order, formatted by DuckDB (fast and exact: integer maths)."""
    rows = ts.size
    if rows == 0:
        return write_csv(path, HEADERS["quotes"], [])
    codes = np.repeat(open_indices.astype(np.int32), ts.shape[1])
    ts_flat = ts.ravel()
    order = np.argsort(ts_flat, kind="stable")  # ties stay in reference order: deterministic
    frame = pd.DataFrame({
        "ts": ts_flat[order],
        "symbol": pd.Categorical.from_codes(codes[order], categories=symbols),
        "bid": bid.ravel()[order], "ask": ask.ravel()[order],
        "bid_size": bid_size.ravel()[order], "ask_size": ask_size.ravel()[order],
    })
    conn.register("vendor_quotes", frame)
    try:
        price = "printf('%d.%04d', {0} // 10000, {0} % 10000) AS {0}"
        target = str(path).replace("'", "''")
        conn.execute(f"""
            COPY (
                SELECT strftime(epoch_ms(ts), '%Y-%m-%dT%H:%M:%S.%gZ') AS ts, symbol::VARCHAR AS symbol,
                       {price.format('bid')}, {price.format('ask')}, bid_size, ask_size
                FROM vendor_quotes
            ) TO '{target}' (FORMAT csv, HEADER true, DELIMITER ',')
        """)
    finally:
        conn.unregister("vendor_quotes")
    return rows


# --------------------------------------------------------------------------- the generator


class _LandingWriter:
    """Writes a landing root day by day, carrying the books forward like the prime broker does."""

    def __init__(self, out: Path, calendars: MarketCalendars, trading_dates: list[dt.date], seed: int, symbols: int,
                 quotes_per_symbol: int, orders_per_day: int, vendors: tuple[str, ...],
                 progress: Callable[[str], None] | None):
        self.out = out
        self.calendars = calendars
        self.trading_dates = trading_dates
        self.opening_date = calendars.previous_books_date(trading_dates[0])
        self.seed = seed
        self.quotes_per_symbol = quotes_per_symbol
        self.orders_per_day = orders_per_day
        self.vendors = vendors
        self.progress = progress
        # DuckDB only formats the big quote files; no progress bar on the caller's terminal.
        self.conn = duckdb.connect()
        self.conn.execute("SET enable_progress_bar = false")

        reference_rng = self._rng(STREAM_REFERENCE, 0)
        self.securities = make_securities(symbols, reference_rng)
        self.by_symbol = {s.symbol: i for i, s in enumerate(self.securities)}
        self.accounts = list(ACCOUNTS)
        self.currencies = self._currencies()
        # The books: (account, symbol) -> signed quantity; (account, currency) -> cash units.
        self.positions: dict[tuple[str, str], int] = {}
        self.cash: dict[tuple[str, str], int] = {}
        self.avg_cost: dict[tuple[str, str], int] = {}
        self.close = np.array([s.initial_price for s in self.securities], dtype=np.int64)
        self.fx = {ccy: int(round(OPENING_FX[ccy] * (1 + reference_rng.normal(0, 0.01)) * RATE_SCALE))
                   for ccy in USD_LEGS}
        self._opening_books(reference_rng)
        self.used_action_symbols: set[str] = set()
        self.corporate_actions: list[CorporateAction] = []
        self.row_counts: dict[str, dict[str, int]] = {}
        self.totals = {"quotes": 0, "orders": 0, "executions": 0}
        self.sequence = {"orders": 0}

    def _rng(self, stream: int, day_index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stream, day_index])

    def _currencies(self) -> list[str]:
        seen = ["USD"]
        for ccy in [a.base_currency for a in self.accounts] + [s.currency for s in self.securities]:
            if ccy not in seen:
                seen.append(ccy)
        return seen

    def usd_per(self, currency: str, fx: dict[str, int] | None = None) -> float:
        return 1.0 if currency == "USD" else (fx or self.fx)[currency] / RATE_SCALE

    # ----------------------------------------------------------------- opening books

    def _opening_books(self, rng: np.random.Generator) -> None:
        us = [i for i, s in enumerate(self.securities) if s.currency == "USD"]
        # Two US names held long by the long-only account and short by the long/short one, so
        # the first split and dividend exercise both the long and the short path.
        anchors = {us[0]: (1, -1), us[min(1, len(us) - 1)]: (1, -1)}
        for a_index, account in enumerate(self.accounts):
            for s_index, security in enumerate(self.securities):
                sign = 0
                if s_index in anchors and a_index < 2:
                    sign = anchors[s_index][a_index]
                elif rng.random() < 0.5:
                    sign = 1 if account.long_only or rng.random() < 0.6 else -1
                target_usd = rng.uniform(100_000, 2_000_000)
                if sign == 0:
                    continue
                price_usd = security.initial_price / PRICE_SCALE * self.usd_per(security.currency)
                lots = max(1, round(target_usd / (price_usd * security.lot_size)))
                key = (account.account, security.symbol)
                self.positions[key] = sign * lots * security.lot_size
                cost = security.initial_price * (1 + rng.normal(0, 0.08))
                self.avg_cost[key] = max(security.tick, int(round(cost / security.tick)) * security.tick)
        for account in self.accounts:
            for currency in self.currencies:
                usd = 25_000_000 if currency == account.base_currency else 2_000_000
                amount = usd / self.usd_per(currency) * (1 + rng.uniform(-0.1, 0.1))
                self.cash[(account.account, currency)] = int(round(amount)) * PRICE_SCALE

    # ----------------------------------------------------------------- files

    def position_rows(self, with_marks: bool) -> list[list[str]]:
        rows = []
        for account in self.accounts:
            for index, security in enumerate(self.securities):
                quantity = self.positions.get((account.account, security.symbol), 0)
                if quantity == 0:
                    continue
                if with_marks:
                    close = int(self.close[index])
                    rows.append([account.account, security.symbol, str(quantity), format_units(close),
                                 format_units(quantity * close), security.currency])
                else:
                    rows.append([account.account, security.symbol, str(quantity),
                                 format_units(self.avg_cost[(account.account, security.symbol)])])
        return rows

    def cash_rows(self) -> list[list[str]]:
        return [[a.account, ccy, format_units(self.cash[(a.account, ccy)])]
                for a in self.accounts for ccy in self.currencies]

    def fx_rows(self) -> list[list[str]]:
        rows = [[f"{ccy}USD", format_rate(self.fx[ccy])] for ccy in USD_LEGS]
        for base, quote in CROSS_PAIRS:
            rows.append([f"{base}{quote}", format_rate(cross_rate(self.fx[base], self.fx[quote]))])
        return rows

    def eod_rows(self, sources: list[str]) -> list[list[str]]:
        return [[s.symbol, format_units(int(self.close[i])), s.currency, sources[i]]
                for i, s in enumerate(self.securities)]

    def write_reference_and_opening(self) -> None:
        reference, opening = self.out / "reference", self.out / "opening"
        reference.mkdir(parents=True)
        opening.mkdir(parents=True)
        write_csv(reference / "securities.csv", HEADERS["securities"],
                  [[s.symbol, s.currency, s.exchange, s.sector, str(s.lot_size)] for s in self.securities])
        write_csv(reference / "accounts.csv", HEADERS["accounts"],
                  [[a.account, a.strategy, a.base_currency, a.prime_broker] for a in self.accounts])
        write_csv(opening / "positions.csv", HEADERS["positions"], self.position_rows(with_marks=False))
        write_csv(opening / "cash.csv", HEADERS["cash"], self.cash_rows())
        write_csv(opening / "eod_prices.csv", HEADERS["eod_prices"], self.eod_rows(["PRIMARY_CLOSE"] * len(self.securities)))
        write_csv(opening / "fx_rates.csv", HEADERS["fx_rates"], self.fx_rows())

    # ----------------------------------------------------------------- corporate actions

    def _choose_action_symbol(self, rng: np.random.Generator, day: dt.date, taken: set[str]) -> str | None:
        """A held security whose exchange is open, preferring one held long AND short."""
        best_score, candidates = 0, []
        for security in self.securities:
            if security.symbol in self.used_action_symbols or security.symbol in taken:
                continue
            if not self.calendars.is_open(security.exchange, day):
                continue
            quantities = [self.positions.get((a.account, security.symbol), 0) for a in self.accounts]
            score = (any(q > 0 for q in quantities) and any(q < 0 for q in quantities)) + any(quantities)
            if score > best_score:
                best_score, candidates = score, [security.symbol]
            elif score == best_score and score > 0:
                candidates.append(security.symbol)
        if not candidates:
            return None
        return candidates[int(rng.integers(len(candidates)))]

    def _corporate_actions_for(self, day_index: int, day: dt.date) -> list[CorporateAction]:
        rng = self._rng(STREAM_ACTIONS, day_index)
        actions = []
        phase = day_index % ACTION_PERIOD
        if phase not in (SPLIT_DAY, DIVIDEND_DAY):
            return actions
        symbol = self._choose_action_symbol(rng, day, set())
        if symbol is None:
            return actions
        index = self.by_symbol[symbol]
        security = self.securities[index]
        holders = {a.account: self.positions[(a.account, symbol)] for a in self.accounts
                   if self.positions.get((a.account, symbol), 0) != 0}
        if phase == SPLIT_DAY:
            actions.append(CorporateAction(symbol, day, "SPLIT", int(rng.choice([2, 3])), None, security.currency, holders))
        else:
            # About 0.4-1.2% of the price, in whole cents.
            cents = max(1, int(round(int(self.close[index]) * rng.uniform(0.004, 0.012) / 100)))
            actions.append(CorporateAction(symbol, day, "CASH_DIVIDEND", None, cents * 100, security.currency, holders))
        self.used_action_symbols.add(symbol)
        return actions

    # ----------------------------------------------------------------- one trading date

    def write_day(self, day_index: int, day: dt.date, fault_hook: Callable | None) -> None:
        folder = self.out / day.isoformat()
        folder.mkdir()
        positions_start = dict(self.positions)  # end of the previous date, before today's actions
        previous_close = self.close.copy()
        previous_fx = dict(self.fx)

        # Corporate actions apply at the start of the ex_date, to the books and to the price path.
        actions = self._corporate_actions_for(day_index, day)
        start_price = previous_close.astype(np.float64)
        flows: dict[tuple[str, str], PositionFlows] = defaultdict(PositionFlows)
        for action in actions:
            index = self.by_symbol[action.symbol]
            for account in self.accounts:
                key = (account.account, action.symbol)
                held = self.positions.get(key, 0)
                if not held:
                    continue
                if action.action == "SPLIT":
                    self.positions[key] = held * action.ratio
                    self.avg_cost[key] = self.avg_cost.get(key, 0) // action.ratio
                else:  # holding at the end of the previous date x amount, negative for shorts
                    self.cash[(account.account, action.currency)] += held * action.amount
                    flows[key].dividends += held * action.amount
            if action.action == "SPLIT":
                start_price[index] = previous_close[index] / action.ratio
            else:
                start_price[index] = previous_close[index] - action.amount
        self.corporate_actions.extend(actions)

        # Market data: quotes only for securities whose exchange has a session today.
        open_indices = np.array([i for i, s in enumerate(self.securities)
                                 if self.calendars.is_open(s.exchange, day)], dtype=np.int64)
        sessions = [self.calendars.session(self.securities[i].exchange, day) for i in open_indices]
        market_rng = self._rng(STREAM_MARKET, day_index)
        market = simulate_primary_path(market_rng, self.securities, open_indices, sessions, start_price[open_indices],
                                       self.quotes_per_symbol)
        symbols = [s.symbol for s in self.securities]
        counts = {}
        for v_index, vendor in enumerate(self.vendors):
            arrays = vendor_quotes(market_rng, market, self.securities, primary=(v_index == 0))
            counts[f"quotes_{vendor}"] = write_quotes(self.conn, folder / f"quotes_{vendor}.csv", symbols, open_indices,
                                                      *arrays)
            del arrays

        # Marks: the mid of the last primary quote; a closed exchange carries the previous close.
        sources = ["CARRIED"] * len(self.securities)
        for index in open_indices:
            self.close[index] = market.close(int(index))
            sources[index] = "PRIMARY_CLOSE"
        fx_rng = self._rng(STREAM_FX, day_index)
        for ccy in USD_LEGS:
            self.fx[ccy] = int(round(self.fx[ccy] * math.exp(fx_rng.normal(0, FX_DAILY_VOL))))

        orders, fills = self._trade(day_index, day, market, flows)

        counts["eod_prices"] = write_csv(folder / "eod_prices.csv", HEADERS["eod_prices"], self.eod_rows(sources))
        counts["fx_rates"] = write_csv(folder / "fx_rates.csv", HEADERS["fx_rates"], self.fx_rows())
        counts["orders"] = write_csv(folder / "orders.csv", HEADERS["orders"], (
            [o.order_id, format_ts(o.ts), o.account, o.symbol, o.side, str(o.quantity), o.order_type,
             "" if o.limit_price is None else format_units(o.limit_price)] for o in orders))
        counts["executions"] = write_csv(folder / "executions.csv", HEADERS["executions"], (
            [f.exec_id, f.order_id, format_ts(f.ts), f.account, f.symbol, f.side, str(f.quantity), format_units(f.price),
             f.currency, format_units(f.fee), f.broker, f.venue] for f in fills))
        settle = self.calendars.books_date_after(day, SETTLEMENT_LAG).isoformat()
        counts["broker_trades"] = write_csv(folder / "broker_trades.csv", HEADERS["broker_trades"], (
            [f.broker, f.broker_ref, f.exec_id, day.isoformat(), settle, f.account, f.symbol, f.side, str(f.quantity),
             format_units(f.price), format_units(f.fee), format_ts(f.received_ts)] for f in fills))
        counts["broker_positions"] = write_csv(folder / "broker_positions.csv", HEADERS["broker_positions"],
                                               self.position_rows(with_marks=True))
        counts["broker_cash"] = write_csv(folder / "broker_cash.csv", HEADERS["broker_cash"], self.cash_rows())
        counts["corporate_actions"] = write_csv(folder / "corporate_actions.csv", HEADERS["corporate_actions"],
                                                [a.row() for a in actions])
        self.row_counts[day.isoformat()] = counts
        quotes_written = sum(v for k, v in counts.items() if k.startswith("quotes_"))
        self.totals["quotes"] += quotes_written
        self.totals["orders"] += len(orders)
        self.totals["executions"] += len(fills)

        if fault_hook is not None:
            fault_hook(DayState(
                writer=self, day_index=day_index, day=day, folder=folder, market=market, actions=actions,
                orders=orders, fills=fills, flows=dict(flows), positions_start=positions_start,
                previous_close=previous_close, previous_fx=previous_fx, sources=sources,
            ))
        if self.progress:
            self.progress(f"{day.isoformat()}: {quotes_written:,} quotes, {len(orders):,} orders, {len(fills):,} fills")

    # ----------------------------------------------------------------- orders and fills

    def _order_time(self, rng: np.random.Generator, session: Session) -> int:
        """A time to send an order: after the open auction settles, not in a lunch break, early
        enough that its fills land before the close."""
        windows = []
        if session.break_start_ms is not None:
            windows.append((session.open_ms + 300_000, session.break_start_ms - 600_000))
            windows.append((session.break_end_ms + 60_000, session.close_ms - 1_200_000))
        else:
            windows.append((session.open_ms + 300_000, session.close_ms - 1_200_000))
        windows = [(a, b) for a, b in windows if b > a] or [(session.open_ms + 1, session.close_ms - 600_000)]
        total = sum(b - a for a, b in windows)
        offset = int(rng.integers(0, total))
        for a, b in windows:
            if offset < b - a:
                return a + offset
            offset -= b - a
        raise AssertionError("unreachable")

    def _trade(self, day_index: int, day: dt.date, market: DayMarket,
               flows: dict[tuple[str, str], PositionFlows]) -> tuple[list[Order], list[Fill]]:
        rng = self._rng(STREAM_TRADING, day_index)
        stamp = day.strftime("%Y%m%d")
        if len(market.open_indices) == 0:
            return [], []
        # Orders are drafted in sequence (so sizes can respect what is already sold today), then
        # numbered in time order.
        drafts = []
        sold_today: dict[tuple[str, str], int] = defaultdict(int)
        for _ in range(self.orders_per_day):
            account = self.accounts[int(rng.integers(len(self.accounts)))]
            index = int(market.open_indices[int(rng.integers(len(market.open_indices)))])
            security = self.securities[index]
            key = (account.account, security.symbol)
            session = market.sessions[market.row_of[index]]
            ts = self._order_time(rng, session)
            mid, _ = market.quote_at(index, ts)
            price_usd = mid / PRICE_SCALE * self.usd_per(security.currency)
            lots = max(1, round(rng.uniform(20_000, 400_000) / (price_usd * security.lot_size)))
            held = self.positions.get(key, 0)
            if account.long_only:
                # A long-only book never sells more than it held this morning.
                available = held - sold_today[key]
                wants_sell = rng.random() < 0.45
                if wants_sell and available >= security.lot_size:
                    side, lots = "SELL", min(lots, available // security.lot_size)
                else:
                    side = "BUY"
            else:
                # Lean against large positions so books stay plausible over long runs.
                exposure = held * price_usd
                coin = rng.random()
                side = "SELL" if exposure > 4e6 else "BUY" if exposure < -4e6 else ("BUY" if coin < 0.5 else "SELL")
            quantity = lots * security.lot_size
            if side == "SELL":
                sold_today[key] += quantity
            is_limit = rng.random() < 0.5
            limit_price = None
            if is_limit:
                # Marketable limits a little through the mid: they fill, never beyond the limit.
                offset = max(1, math.ceil(mid * rng.uniform(0.001, 0.006) / security.tick)) * security.tick
                limit_price = mid + offset if side == "BUY" else max(security.tick, mid - offset)
            drafts.append((ts, account, index, side, quantity, "LIMIT" if is_limit else "MARKET", limit_price))

        drafts.sort(key=lambda d: d[0])  # stable: equal times keep the drafting order
        orders, pending = [], []
        for number, (ts, account, index, side, quantity, order_type, limit_price) in enumerate(drafts, start=1):
            security = self.securities[index]
            order = Order(f"ORD-{stamp}-{number:05d}", ts, account.account, security.symbol, side, quantity, order_type,
                          limit_price)
            orders.append(order)
            session = market.sessions[market.row_of[index]]
            lots = quantity // security.lot_size
            filled_lots = lots if (lots == 1 or rng.random() < 0.7) else max(1, int(lots * rng.uniform(0.2, 0.9)))
            parts = min(int(rng.integers(1, 5)), filled_lots)
            cuts = np.sort(rng.choice(np.arange(1, filled_lots), size=parts - 1, replace=False)) if parts > 1 else []
            bounds = [0, *[int(c) for c in cuts], filled_lots]
            fill_ts = ts
            for part in range(parts):
                fill_ts = min(fill_ts + int(rng.integers(200, 120_000)), session.close_ms - 1)
                mid, half = market.quote_at(index, fill_ts)
                slip = int(rng.integers(0, half // security.tick + 1)) * security.tick
                price = mid + slip if side == "BUY" else mid - slip
                if limit_price is not None:
                    price = min(price, limit_price) if side == "BUY" else max(price, limit_price)
                fill_quantity = (bounds[part + 1] - bounds[part]) * security.lot_size
                # 1 bp of notional, rounded half up to the cent, at least a cent.
                cents = max(1, (fill_quantity * price + 500_000) // 1_000_000)
                venue = VENUES[security.exchange][int(rng.integers(len(VENUES[security.exchange])))]
                pending.append((fill_ts, len(orders), part, Fill(
                    "", order.order_id, fill_ts, account.account, security.symbol, side, fill_quantity, price,
                    security.currency, cents * 100, account.prime_broker, venue)))

        pending.sort(key=lambda p: (p[0], p[1], p[2]))
        cutoff = date_start_ms(day) + (BROKER_CUTOFF.hour * 3600 + BROKER_CUTOFF.minute * 60) * 1000
        fills = []
        for number, (_, _, _, fill) in enumerate(pending, start=1):
            fill.exec_id = f"EX-{stamp}-{number:05d}"
            fill.broker_ref = f"{fill.broker}-{stamp}-{number:06d}"
            # The confirm arrives minutes to an hour later, always before the cut-off.
            fill.received_ts = min(fill.ts + int(rng.integers(5_000, 3_600_000)), cutoff - 1_000)
            fills.append(fill)
            key = (fill.account, fill.symbol)
            self.positions[key] = self.positions.get(key, 0) + fill.signed_quantity
            self.cash[(fill.account, fill.currency)] += fill.cash_flow
            flows[key].trade_cash_flow += fill.quantity * fill.price * (1 if fill.side == "BUY" else -1)
            flows[key].fees += fill.fee
            if self.positions[key] == 0:
                self.avg_cost.pop(key, None)
            else:
                self.avg_cost.setdefault(key, fill.price)
        return orders, fills


@dataclasses.dataclass
class DayState:
    """Everything known about a freshly written date: what a fault needs to pick its target."""

    writer: _LandingWriter
    day_index: int
    day: dt.date
    folder: Path
    market: DayMarket
    actions: list[CorporateAction]
    orders: list[Order]
    fills: list[Fill]
    flows: dict[tuple[str, str], PositionFlows]
    positions_start: dict[tuple[str, str], int]
    previous_close: np.ndarray
    previous_fx: dict[str, int]
    sources: list[str]


# --------------------------------------------------------------------------- output folder


def _is_generator_output(manifest: Path) -> bool:
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("generator") == GENERATOR_ID
    except (OSError, ValueError, AttributeError):
        return False


def _prepare_output(out: Path) -> None:
    """Refuse a folder holding anything but a previous generator output; clear a previous output."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if not out.exists():
        out.mkdir(parents=True)
        return
    entries = sorted(out.iterdir())
    if not entries:
        return
    if not _is_generator_output(out / MANIFEST_NAME):
        raise ValueError(
            f"{out} is not empty and holds no previous generator output ({MANIFEST_NAME} is missing); "
            "refusing to write into it: choose an empty or new folder"
        )
    foreign = [e.name for e in entries
               if not (e.name in ("reference", "opening", MANIFEST_NAME) or (_DATE_FOLDER.match(e.name) and e.is_dir()))]
    if foreign:
        raise ValueError(f"{out} holds a previous generator output plus other files ({', '.join(foreign[:5])}); "
                         "refusing to overwrite them")
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _write_manifest(path: Path, manifest: dict) -> None:
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _file_digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- entry point


def generate_landing(
    out: Path,
    start: dt.date,
    days: int,
    *,
    seed: int = 7,
    fault: str | None = None,
    fault_date: dt.date | None = None,
    symbols: int = 16,
    quotes_per_symbol: int = 390,
    orders_per_day: int = 40,
    vendors: tuple[str, ...] = ("primary", "secondary"),
    progress: Callable[[str], None] | None = None,
) -> GenerationSummary:
    """Write `days` NYSE sessions of landing data from `start` into `out`; same arguments, same bytes.

    With `fault`, the named fault of ``FAULTS`` is injected into the files of `fault_date`
    (default: the last date, so earlier dates stay clean history) and described in the manifest.
    Raises ValueError for bad arguments or an output folder that is not ours to overwrite.
    """
    from .faults import FAULTS, apply_fault  # here: faults.py builds on this module

    out = Path(out)
    if isinstance(start, dt.datetime) or not isinstance(start, dt.date):
        raise ValueError(f"start must be a date, got {start!r}")
    for name, value, minimum in (("days", days, 1), ("symbols", symbols, MIN_SYMBOLS),
                                 ("quotes_per_symbol", quotes_per_symbol, 2), ("orders_per_day", orders_per_day, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    if isinstance(vendors, str):
        raise ValueError("vendors must be a tuple of vendor names, e.g. ('primary', 'secondary')")
    vendors = tuple(vendors)
    if not vendors or len(set(vendors)) != len(vendors) or not all(_VENDOR_NAME.match(v) for v in vendors):
        raise ValueError(f"vendors must be distinct names of letters, digits, '-' or '_', got {vendors!r}")
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; valid faults: {', '.join(FAULTS)}")
    if fault_date is not None and fault is None:
        raise ValueError("fault_date is given but no fault is named")

    calendars, trading_dates = trading_calendars(start, int(days))
    if fault is not None:
        if fault_date is None:
            fault_date = trading_dates[-1]
        elif fault_date not in trading_dates:
            raise ValueError(f"fault_date {fault_date} is not one of the generated trading dates "
                             f"({trading_dates[0]} to {trading_dates[-1]})")

    _prepare_output(out)
    manifest_path = out / MANIFEST_NAME
    arguments = {
        "start": start.isoformat(), "days": int(days), "seed": int(seed), "fault": fault,
        "fault_date": None if fault_date is None else fault_date.isoformat(), "symbols": int(symbols),
        "quotes_per_symbol": int(quotes_per_symbol), "orders_per_day": int(orders_per_day), "vendors": list(vendors),
    }
    # Written first so that an interrupted run is still recognised (and overwritten) next time.
    _write_manifest(manifest_path, {"generator": GENERATOR_ID, "complete": False, "arguments": arguments})

    writer = _LandingWriter(out, calendars, trading_dates, int(seed), int(symbols), int(quotes_per_symbol),
                            int(orders_per_day), vendors, progress)
    fault_record: dict | None = None

    def fault_hook(state: DayState) -> None:
        nonlocal fault_record
        before = _file_digests(state.folder)
        fault_record = apply_fault(FAULTS[fault], state, writer._rng(STREAM_FAULT, state.day_index))
        after = _file_digests(state.folder)
        fault_record["files_changed"] = sorted(
            f"{state.day.isoformat()}/{name}" for name in set(before) | set(after) if before.get(name) != after.get(name))

    try:
        writer.write_reference_and_opening()
        for day_index, day in enumerate(trading_dates):
            writer.write_day(day_index, day, fault_hook if day == fault_date else None)
    finally:
        writer.conn.close()

    manifest = {
        "generator": GENERATOR_ID,
        "complete": True,
        "landing_format_version": LANDING_FORMAT_VERSION,
        "arguments": arguments,
        "opening_date": writer.opening_date.isoformat(),
        "trading_dates": [d.isoformat() for d in trading_dates],
        "books_calendar": BOOKS_CALENDAR,
        "broker_cutoff_utc": BROKER_CUTOFF.strftime("%H:%M"),
        "accounts": [a.account for a in writer.accounts],
        "currencies": writer.currencies,
        "exchanges_closed": {
            d.isoformat(): closed for d in trading_dates
            if (closed := [mic for mic in EXCHANGES if not calendars.is_open(mic, d)])
        },
        "corporate_actions": [a.as_manifest() for a in writer.corporate_actions],
        "row_counts": writer.row_counts,
        "fault": fault_record,
    }
    _write_manifest(manifest_path, manifest)
    return GenerationSummary(
        out=out, trading_dates=tuple(trading_dates), opening_date=writer.opening_date,
        quote_rows=writer.totals["quotes"], order_rows=writer.totals["orders"],
        execution_rows=writer.totals["executions"],
        corporate_actions=tuple(a.as_manifest() for a in writer.corporate_actions),
        fault=fault, fault_date=fault_date if fault else None, manifest_path=manifest_path,
    )
