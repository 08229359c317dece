"""The landing format, version 1, as data: which files exist, their columns and types.

This module is the one place that knows the spec (``shared/spec/landing-format.md``). The
ingestion assets, the rule checks and the sample generator's tests all read it from here.
A feed may add columns: they are ignored. A missing required column, an unparsable value or a
missing file is reported with the file, the column and the lines, never defaulted.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import re
from pathlib import Path

# Column types in the warehouse. Money and quantities are exact decimals so the books agree
# with the broker to the cent; market data is DOUBLE because it is large and only compared
# within tolerances.
DECIMAL = "DECIMAL(24,6)"
RATE = "DECIMAL(24,10)"


@dataclasses.dataclass(frozen=True)
class LandingDataset:
    name: str  # also the asset name and the raw table name
    path: str  # relative to the landing root, or to the date folder when `daily`
    columns: dict[str, str]  # column -> DuckDB type, in the spec's order
    daily: bool
    description: str
    optional_columns: tuple[str, ...] = ()
    key: tuple[str, ...] = ()

    def file_for(self, landing_root: Path, business_date: dt.date | None) -> Path:
        if self.daily:
            assert business_date is not None
            return landing_root / business_date.isoformat() / self.path
        return landing_root / self.path


def _cols(spec: str) -> dict[str, str]:
    out = {}
    # Split on commas outside parentheses: DECIMAL(24,6) carries one of its own.
    for part in re.split(r",(?![^(]*\))", spec):
        name, _, sql_type = part.strip().partition(":")
        out[name] = sql_type or "VARCHAR"
    return out


TIMESTAMP = "TIMESTAMPTZ"

SECURITIES = LandingDataset(
    "securities", "reference/securities.csv",
    _cols("symbol, currency, exchange, sector, lot_size:BIGINT"), daily=False,
    description="Securities master: one row per tradable security with its currency and primary exchange.",
    key=("symbol",),
)
ACCOUNTS = LandingDataset(
    "accounts", "reference/accounts.csv",
    _cols("account, strategy, base_currency, prime_broker"), daily=False,
    description="The fund's accounts with their strategy, base currency and prime broker.",
    key=("account",),
)
OPENING_POSITIONS = LandingDataset(
    "opening_positions", "opening/positions.csv",
    _cols(f"account, symbol, quantity:{DECIMAL}, avg_cost:{DECIMAL}"), daily=False,
    description="Books as of the close before the landing root's first trading date.",
    key=("account", "symbol"),
)
OPENING_CASH = LandingDataset(
    "opening_cash", "opening/cash.csv",
    _cols(f"account, currency, balance:{DECIMAL}"), daily=False,
    description="Cash by account and currency as of the close before the first trading date.",
    key=("account", "currency"),
)
OPENING_EOD_PRICES = LandingDataset(
    "opening_eod_prices", "opening/eod_prices.csv",
    _cols(f"symbol, close:{DECIMAL}, currency, source"), daily=False,
    description="Marks of the close before the first trading date, to value the opening books.",
    key=("symbol",),
)
OPENING_FX_RATES = LandingDataset(
    "opening_fx_rates", "opening/fx_rates.csv",
    _cols(f"pair, rate:{RATE}"), daily=False,
    description="FX closing rates of the close before the first trading date.",
    key=("pair",),
)
QUOTES = LandingDataset(
    "quotes", "quotes_*.csv",
    _cols("ts:TIMESTAMPTZ, symbol, bid:DOUBLE, ask:DOUBLE, bid_size:BIGINT, ask_size:BIGINT"), daily=True,
    description="Top-of-book quotes of every market-data vendor for the trading date, with the vendor kept.",
)
EOD_PRICES = LandingDataset(
    "eod_prices", "eod_prices.csv",
    _cols(f"symbol, close:{DECIMAL}, currency, source"), daily=True,
    description="Official closing marks used for valuation.",
    key=("symbol",),
)
FX_RATES = LandingDataset(
    "fx_rates", "fx_rates.csv",
    _cols(f"pair, rate:{RATE}"), daily=True,
    description="Closing FX rates; pair BASEQUOTE, e.g. EURUSD = USD per 1 EUR.",
    key=("pair",),
)
ORDERS = LandingDataset(
    "orders", "orders.csv",
    _cols(f"order_id, ts:TIMESTAMPTZ, account, symbol, side, quantity:{DECIMAL}, order_type, limit_price:{DECIMAL}"),
    daily=True,
    description="Orders sent by the fund's order management system.",
    optional_columns=("limit_price",),
    key=("order_id",),
)
EXECUTIONS = LandingDataset(
    "executions", "executions.csv",
    _cols(
        f"exec_id, order_id, ts:TIMESTAMPTZ, account, symbol, side, quantity:{DECIMAL}, price:{DECIMAL}, "
        f"currency, fee:{DECIMAL}, broker, venue"
    ),
    daily=True,
    description="Fills as recorded by the firm's execution system.",
    key=("exec_id",),
)
BROKER_TRADES = LandingDataset(
    "broker_trades", "broker_trades.csv",
    _cols(
        f"broker, broker_ref, exec_id, trade_date:DATE, settle_date:DATE, account, symbol, side, "
        f"quantity:{DECIMAL}, price:{DECIMAL}, fee:{DECIMAL}, received_ts:TIMESTAMPTZ"
    ),
    daily=True,
    description="The brokers' confirms of the firm's fills.",
    key=("broker", "broker_ref"),
)
BROKER_POSITIONS = LandingDataset(
    "broker_positions", "broker_positions.csv",
    _cols(f"account, symbol, quantity:{DECIMAL}, close_price:{DECIMAL}, market_value:{DECIMAL}, currency"),
    daily=True,
    description="The prime broker's end-of-day position statement.",
    key=("account", "symbol"),
)
BROKER_CASH = LandingDataset(
    "broker_cash", "broker_cash.csv",
    _cols(f"account, currency, balance:{DECIMAL}"), daily=True,
    description="The prime broker's end-of-day cash statement.",
    key=("account", "currency"),
)
CORPORATE_ACTIONS = LandingDataset(
    "corporate_actions", "corporate_actions.csv",
    _cols(f"symbol, ex_date:DATE, action, ratio:{DECIMAL}, amount:{DECIMAL}, currency"), daily=True,
    description="Splits and cash dividends effective at the start of their ex_date.",
    optional_columns=("ratio", "amount", "currency"),
    key=("symbol", "action"),
)

REFERENCE_DATASETS = (SECURITIES, ACCOUNTS)
OPENING_DATASETS = (OPENING_POSITIONS, OPENING_CASH, OPENING_EOD_PRICES, OPENING_FX_RATES)
DAILY_DATASETS = (
    QUOTES, EOD_PRICES, FX_RATES, ORDERS, EXECUTIONS, BROKER_TRADES, BROKER_POSITIONS, BROKER_CASH,
    CORPORATE_ACTIONS,
)
ALL_DATASETS = REFERENCE_DATASETS + OPENING_DATASETS + DAILY_DATASETS
DATASETS_BY_NAME = {d.name: d for d in ALL_DATASETS}

_VENDOR_FILE = re.compile(r"^quotes_([A-Za-z0-9_-]+)\.csv$")
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def vendor_quote_files(day_dir: Path) -> dict[str, Path]:
    """``quotes_<vendor>.csv`` files of a date folder, by vendor, in a stable order."""
    if not day_dir.is_dir():
        return {}
    found = {}
    for path in sorted(day_dir.iterdir()):
        match = _VENDOR_FILE.match(path.name)
        if match:
            found[match.group(1)] = path
    return found


def landing_dates(landing_root: Path) -> list[dt.date]:
    """The trading dates a landing root holds, from its date folders."""
    if not landing_root.is_dir():
        return []
    dates = []
    for path in landing_root.iterdir():
        if path.is_dir() and _DATE_FOLDER.match(path.name):
            try:
                dates.append(dt.date.fromisoformat(path.name))
            except ValueError:
                continue
    return sorted(dates)


def read_header(path: Path) -> list[str]:
    """The header row of a CSV file; raises UnicodeDecodeError or ValueError on a bad file."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise ValueError("the file is empty: no header row")
    return [column.strip() for column in header]
