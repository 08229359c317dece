"""The fault catalogue: one narrow, named corruption per entry, covering every spec invariant.

A fault edits the freshly written clean files of one trading date (the last generated date by
default, so earlier dates stay clean history) and returns a machine-readable description that
goes into ``_generator.json`` under ``"fault"``:

``changes``
    every edit: ``{"file", "action": "modified" | "removed_row" | "added_row" | "removed_rows" |
    "removed_file" | "removed_column" | "bytes_replaced", "key": {...}, "column", "original", "new"}``;
    ``key`` names the row by the file's natural key (exec_id, (account, symbol), pair, ...).
``expected_position_diff`` / ``expected_cash_diff``
    the breaks the platform must find between its roll-forward (previous books + the
    corporate actions and fills *as written after the fault*) and the broker's statements:
    ``[{"account", "symbol" | "currency", "firm_quantity" | "firm_balance",
    "broker_quantity" | "broker_balance", "quantity" | "amount": firm - broker}]``.
    ``[]`` means books and broker still agree; ``null`` means they cannot be computed
    (a file is unreadable or a mark/rate is unusable).
``expected_market_value_diff``
    how the firm's end-of-day market values move against the clean data, per account and
    symbol: ``{"account", "symbol", "currency", "amount" (security currency),
    "base_currency", "amount_base"}``.
``expected_pnl_diff``
    how each account's total P&L of the date moves against the clean data, in base currency:
    ``{"account", "base_currency", "amount"}``. Convention: P&L(D) = sum over holdings of
    (end MV - trade cash flow - fees + dividends) converted at D's rates, minus start MV
    converted at D-1's rates; rates convert through USD (CCY->base = CCYUSD / BASEUSD).
    Amounts in base currency are rounded to 1e-4.

To add a fault: write ``def my_fault(day_dir, rng, ctx) -> dict`` that edits the files through
``ctx`` (so every change is recorded) and returns the target and the four ``expected_*``
entries, and decorate it with ``@fault(name, invariant, datasets, summary, blocking_expected)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .generator import (
    BROKER_CUTOFF, CROSS_PAIRS, PRICE_SCALE, RATE_SCALE, USD_LEGS, Account, DayState, Security, cross_rate,
    date_start_ms, format_rate, format_ts, format_units, parse_ts, parse_units,
)

EXPECTED_KEYS = ("expected_position_diff", "expected_cash_diff", "expected_market_value_diff", "expected_pnl_diff")


@dataclasses.dataclass(frozen=True)
class Fault:
    """One entry of the catalogue."""

    name: str
    invariant: int  # 1-10 from the landing spec's "Invariants of clean data"; 0 = file-level problem
    datasets: tuple[str, ...]  # landing datasets (file stems; "quotes" = every quotes_<vendor>.csv) it edits
    summary: str  # one sentence an operations person understands
    blocking_expected: bool  # True when the firm's books or P&L would be wrong (or cannot be computed)
    apply: Callable[[Path, np.random.Generator, "FaultContext"], dict]


FAULTS: dict[str, Fault] = {}


def fault(name: str, invariant: int, datasets: tuple[str, ...], summary: str, blocking_expected: bool):
    """Register a fault function in FAULTS, in definition order."""

    def register(apply):
        if name in FAULTS:
            raise ValueError(f"fault {name!r} is defined twice")
        FAULTS[name] = Fault(name, invariant, tuple(datasets), summary, blocking_expected, apply)
        return apply

    return register


class FaultNotApplicable(ValueError):
    """The fault date has nothing this fault can corrupt (e.g. no LIMIT order was filled)."""


# --------------------------------------------------------------------------- context


class FaultContext:
    """What a fault may read about the date, and the only way it edits files (every edit recorded)."""

    def __init__(self, state: DayState, rng: np.random.Generator):
        self.state = state
        self.rng = rng
        self.day: dt.date = state.day
        self.day_dir: Path = state.folder
        writer = state.writer
        self.securities: dict[str, Security] = {s.symbol: s for s in writer.securities}
        self.security_order = {s.symbol: i for i, s in enumerate(writer.securities)}
        self.accounts: dict[str, Account] = {a.account: a for a in writer.accounts}
        self.account_order = {a.account: i for i, a in enumerate(writer.accounts)}
        self.vendors: tuple[str, ...] = writer.vendors
        self.positions_start = dict(state.positions_start)  # end of previous date, before today's actions
        self.positions_end = dict(writer.positions)  # clean end of this date
        self.close = {s.symbol: int(writer.close[i]) for i, s in enumerate(writer.securities)}
        self.previous_close = {s.symbol: int(state.previous_close[i]) for i, s in enumerate(writer.securities)}
        self.fx = dict(writer.fx)
        self.previous_fx = dict(state.previous_fx)
        self.open_symbols = [writer.securities[int(i)].symbol for i in state.market.open_indices]
        self.action_symbols = {a.symbol for a in state.actions}
        self.filled_symbols = {f.symbol for f in state.fills}
        self.fills = list(state.fills)
        self.orders = list(state.orders)
        self.flows = state.flows
        self.changes: list[dict] = []

    # ----------------------------------------------------------------- files

    def read(self, filename: str) -> pd.DataFrame:
        """A landing file as text, exactly as written (no number parsing, empty stays empty)."""
        return pd.read_csv(self.day_dir / filename, dtype=str, keep_default_na=False, na_filter=False)

    def write(self, filename: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.day_dir / filename, index=False, lineterminator="\n")

    def modified(self, filename: str, key: dict, column: str, original: str, new: str, row: int | None = None):
        change = {"file": filename, "action": "modified", "key": key, "column": column, "original": original,
                  "new": new}
        if row is not None:
            change["row"] = int(row)
        self.changes.append(change)

    def removed_row(self, filename: str, key: dict, values: dict):
        self.changes.append({"file": filename, "action": "removed_row", "key": key, "original": values})

    def added_row(self, filename: str, key: dict, values: dict):
        self.changes.append({"file": filename, "action": "added_row", "key": key, "new": values})

    def set_cell(self, filename: str, frame: pd.DataFrame, index, column: str, new: str, key_columns: tuple[str, ...]):
        original = frame.at[index, column]
        frame.at[index, column] = new
        self.modified(filename, {c: frame.at[index, c] for c in key_columns}, column, original, new,
                      row=frame.index.get_loc(index))

    # ----------------------------------------------------------------- targets

    def choose(self, candidates: list, what: str):
        if not candidates:
            raise FaultNotApplicable(f"cannot apply the fault on {self.day}: no {what} that day")
        return candidates[int(self.rng.integers(len(candidates)))]

    def primary(self) -> str:
        return self.vendors[0]

    def secondary(self) -> str:
        if len(self.vendors) < 2:
            raise FaultNotApplicable("this fault needs a second market-data vendor")
        return self.vendors[1]

    def quiet_symbols(self, among: list[str]) -> list[str]:
        """Prefer symbols without fills or corporate actions today: the fault then tells one story."""
        quiet = [s for s in among if s not in self.filled_symbols and s not in self.action_symbols]
        calm = [s for s in among if s not in self.action_symbols]
        return quiet or calm or among

    def quoted_symbol(self) -> str:
        return self.choose(self.quiet_symbols(self.open_symbols), "security with an open exchange")

    def held_symbols(self, *, at_start: bool = False, open_only: bool = True) -> list[str]:
        book = self.positions_start if at_start else self.positions_end
        held = {symbol for (_, symbol), quantity in book.items() if quantity != 0}
        if open_only:
            held &= set(self.open_symbols)
        return sorted(held, key=self.security_order.__getitem__)

    def holders(self, symbol: str, *, at_start: bool = False) -> dict[str, int]:
        book = self.positions_start if at_start else self.positions_end
        return {a: book[(a, symbol)] for a in self.accounts if book.get((a, symbol), 0) != 0}

    def stamp(self) -> str:
        return self.day.strftime("%Y%m%d")

    def cutoff_ms(self) -> int:
        return date_start_ms(self.day) + (BROKER_CUTOFF.hour * 3600 + BROKER_CUTOFF.minute * 60) * 1000

    # ----------------------------------------------------------------- money

    def usd_per(self, currency: str, fx: dict[str, int] | None = None) -> Decimal:
        return Decimal(1) if currency == "USD" else Decimal((fx or self.fx)[currency]) / RATE_SCALE

    def to_base(self, account: str, currency: str, units: int, fx: dict[str, int] | None = None) -> Decimal:
        base = self.accounts[account].base_currency
        return Decimal(units) / PRICE_SCALE * self.usd_per(currency, fx) / self.usd_per(base, fx)

    def market_value_diff(self, account: str, symbol: str, local_units: int, base_amount: Decimal) -> dict:
        return {"account": account, "symbol": symbol, "currency": self.securities[symbol].currency,
                "amount": money(local_units), "base_currency": self.accounts[account].base_currency,
                "amount_base": rounded(base_amount)}

    def pnl_diffs(self, per_account: dict[str, Decimal]) -> list[dict]:
        return [{"account": a, "base_currency": self.accounts[a].base_currency, "amount": rounded(v)}
                for a, v in sorted(per_account.items(), key=lambda kv: self.account_order[kv[0]]) if v != 0]

    def mark_change_effects(self, symbol: str, new_close: int) -> tuple[list[dict], list[dict]]:
        """The firm's market value and P&L moves when `symbol` is marked at new_close instead."""
        mv, pnl = [], defaultdict(Decimal)
        currency = self.securities[symbol].currency
        for account, quantity in self.holders(symbol).items():
            local = quantity * (new_close - self.close[symbol])
            base = self.to_base(account, currency, local)
            mv.append(self.market_value_diff(account, symbol, local, base))
            pnl[account] += base
        return mv, self.pnl_diffs(pnl)

    def extra_trade_effects(self, account: str, symbol: str, signed_quantity: int, price: int, fee: int):
        """The firm's market value and P&L moves when it books one more fill."""
        close = self.close[symbol]
        currency = self.securities[symbol].currency
        local_mv = signed_quantity * close
        local_pnl = signed_quantity * (close - price) - fee
        mv = [self.market_value_diff(account, symbol, local_mv, self.to_base(account, currency, local_mv))]
        return mv, self.pnl_diffs({account: self.to_base(account, currency, local_pnl)})

    # ----------------------------------------------------------------- the broker's books

    def book_at_broker(self, account: str, symbol: str, signed_quantity: int, cash_units: int) -> None:
        """The prime broker books a trade: its position and cash statements move, nothing else."""
        security = self.securities[symbol]
        positions = self.read("broker_positions.csv")
        match = positions.index[(positions["account"] == account) & (positions["symbol"] == symbol)]
        key = {"account": account, "symbol": symbol}
        close = self.close[symbol]
        if len(match):
            index = match[0]
            new_quantity = int(positions.at[index, "quantity"]) + signed_quantity
            if new_quantity == 0:
                self.removed_row("broker_positions.csv", key, positions.loc[index].to_dict())
                positions = positions.drop(index)
            else:
                self.set_cell("broker_positions.csv", positions, index, "quantity", str(new_quantity),
                              ("account", "symbol"))
                self.set_cell("broker_positions.csv", positions, index, "market_value",
                              format_units(new_quantity * parse_units(positions.at[index, "close_price"])),
                              ("account", "symbol"))
        else:
            row = {"account": account, "symbol": symbol, "quantity": str(signed_quantity),
                   "close_price": format_units(close), "market_value": format_units(signed_quantity * close),
                   "currency": security.currency}
            positions = pd.concat([positions, pd.DataFrame([row])], ignore_index=True)
            self.added_row("broker_positions.csv", key, row)
        # Keep the statement in its usual order: accounts, then securities, as the reference lists them.
        order = positions.apply(lambda r: (self.account_order[r["account"]], self.security_order[r["symbol"]]), axis=1)
        positions = positions.loc[order.sort_values(kind="stable").index]
        self.write("broker_positions.csv", positions)
        self.adjust_broker_cash(account, security.currency, cash_units)

    def adjust_broker_cash(self, account: str, currency: str, cash_units: int) -> None:
        cash = self.read("broker_cash.csv")
        index = cash.index[(cash["account"] == account) & (cash["currency"] == currency)][0]
        self.set_cell("broker_cash.csv", cash, index, "balance",
                      format_units(parse_units(cash.at[index, "balance"]) + cash_units), ("account", "currency"))
        self.write("broker_cash.csv", cash)

    def broker_quantity(self, account: str, symbol: str) -> int:
        positions = self.read("broker_positions.csv")
        match = positions[(positions["account"] == account) & (positions["symbol"] == symbol)]
        return int(match["quantity"].iloc[0]) if len(match) else 0

    def broker_balance(self, account: str, currency: str) -> int:
        cash = self.read("broker_cash.csv")
        match = cash[(cash["account"] == account) & (cash["currency"] == currency)]
        return parse_units(match["balance"].iloc[0])

    def position_diff(self, account: str, symbol: str, firm: int) -> dict:
        broker = self.broker_quantity(account, symbol)
        return {"account": account, "symbol": symbol, "firm_quantity": firm, "broker_quantity": broker,
                "quantity": firm - broker}

    def cash_diff(self, account: str, currency: str, firm: int) -> dict:
        broker = self.broker_balance(account, currency)
        return {"account": account, "currency": currency, "firm_balance": money(firm), "broker_balance": money(broker),
                "amount": money(firm - broker)}

    def firm_cash(self, account: str, currency: str) -> int:
        return self.state.writer.cash[(account, currency)]


def money(units: int) -> float:
    """Exact 1e-4 amounts as JSON numbers (a float prints them back exactly at these magnitudes)."""
    return float(Decimal(int(units)) / PRICE_SCALE)


def rounded(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def no_book_effect() -> dict:
    """Books and broker still agree, and the firm's values and P&L are those of the clean data."""
    return {"expected_position_diff": [], "expected_cash_diff": [], "expected_market_value_diff": [],
            "expected_pnl_diff": []}


def books_not_computable() -> dict:
    return {key: None for key in EXPECTED_KEYS}


def apply_fault(definition: Fault, state: DayState, rng: np.random.Generator) -> dict:
    """Run one fault on a freshly written date; return its manifest record."""
    context = FaultContext(state, rng)
    description = definition.apply(state.folder, rng, context)
    missing = [k for k in EXPECTED_KEYS if k not in description]
    if missing:
        raise AssertionError(f"fault {definition.name} does not state {', '.join(missing)}")
    return {
        "name": definition.name, "date": state.day.isoformat(), "invariant": definition.invariant,
        "datasets": list(definition.datasets), "summary": definition.summary,
        "blocking_expected": definition.blocking_expected,
        **description,
        "changes": context.changes,
    }


# --------------------------------------------------------------------------- quote helpers


def _symbol_rows(quotes: pd.DataFrame, symbol: str) -> pd.Index:
    """Rows of one symbol in file order, which is time order."""
    return quotes.index[quotes["symbol"] == symbol]


def _mid_and_half(quotes: pd.DataFrame, index) -> tuple[int, int]:
    """Exact mid and half spread; bid + ask is even in clean data, so the mid has 4 decimals."""
    bid, ask = parse_units(quotes.at[index, "bid"]), parse_units(quotes.at[index, "ask"])
    return (bid + ask) // 2, (ask - bid) // 2


def _reprice(ctx: FaultContext, filename: str, quotes: pd.DataFrame, rows, symbol: str,
             new_mid: Callable[[int], int], new_half: Callable[[int], int] | None = None) -> None:
    """Set new bid/ask around a transformed mid, on the instrument's tick, bid < ask kept."""
    tick = ctx.securities[symbol].tick
    for index in rows:
        mid, half = _mid_and_half(quotes, index)
        mid2 = max(tick, int(round(new_mid(mid) / tick)) * tick)
        half2 = max(tick, int(round((new_half(half) if new_half else half) / tick)) * tick)
        for column, value in (("bid", mid2 - half2), ("ask", mid2 + half2)):
            ctx.set_cell(filename, quotes, index, column, format_units(value), ("symbol", "ts"))


def _last_mid(quotes: pd.DataFrame, symbol: str) -> int:
    return _mid_and_half(quotes, _symbol_rows(quotes, symbol)[-1])[0]


def _update_broker_marks(ctx: FaultContext, symbol: str, new_close: int,
                         quantities: dict[str, int] | None = None) -> None:
    """Broker statement lines of `symbol` at a new price (and optionally new quantities)."""
    positions = ctx.read("broker_positions.csv")
    keys = ("account", "symbol")
    quantities = dict(quantities or {})
    for index in positions.index[positions["symbol"] == symbol]:
        account = positions.at[index, "account"]
        quantity = quantities.pop(account, int(positions.at[index, "quantity"]))
        if quantity == 0:
            ctx.removed_row("broker_positions.csv", {"account": account, "symbol": symbol}, positions.loc[index].to_dict())
            positions = positions.drop(index)
            continue
        if quantity != int(positions.at[index, "quantity"]):
            ctx.set_cell("broker_positions.csv", positions, index, "quantity", str(quantity), keys)
        ctx.set_cell("broker_positions.csv", positions, index, "close_price", format_units(new_close), keys)
        ctx.set_cell("broker_positions.csv", positions, index, "market_value", format_units(quantity * new_close), keys)
    new_rows = []
    for account, quantity in quantities.items():  # holdings the statement did not list before
        if quantity:
            row = {"account": account, "symbol": symbol, "quantity": str(quantity),
                   "close_price": format_units(new_close), "market_value": format_units(quantity * new_close),
                   "currency": ctx.securities[symbol].currency}
            new_rows.append(row)
            ctx.added_row("broker_positions.csv", {"account": account, "symbol": symbol}, row)
    if new_rows:
        positions = pd.concat([positions, pd.DataFrame(new_rows)], ignore_index=True)
        order = positions.apply(lambda r: (ctx.account_order[r["account"]], ctx.security_order[r["symbol"]]), axis=1)
        positions = positions.loc[order.sort_values(kind="stable").index]
    ctx.write("broker_positions.csv", positions)


def _set_mark(ctx: FaultContext, symbol: str, new_close: int) -> None:
    marks = ctx.read("eod_prices.csv")
    index = marks.index[marks["symbol"] == symbol][0]
    ctx.set_cell("eod_prices.csv", marks, index, "close", format_units(new_close), ("symbol",))
    ctx.write("eod_prices.csv", marks)


# =========================================================================== file level (0)


@fault("missing_file", 0, ("executions",), "The day's executions.csv never arrived.", True)
def missing_file(day_dir, rng, ctx):
    path = day_dir / "executions.csv"
    rows = len(ctx.read("executions.csv"))
    path.unlink()
    ctx.changes.append({"file": "executions.csv", "action": "removed_file", "rows_lost": rows})
    return {"target": {"file": "executions.csv"}, **books_not_computable()}


@fault("malformed_value", 0, ("executions",), "One fill's price in executions.csv is not a number (like 12.3.4).",
       True)
def malformed_value(day_dir, rng, ctx):
    fills = ctx.read("executions.csv")
    index = ctx.choose(list(fills.index), "fill")
    whole, _, decimals = fills.at[index, "price"].partition(".")
    garbled = f"{whole}.{decimals[:2]}.{decimals[2:] or '0'}"  # 187.2300 -> 187.23.00
    ctx.set_cell("executions.csv", fills, index, "price", garbled, ("exec_id",))
    ctx.write("executions.csv", fills)
    return {"target": {"file": "executions.csv", "exec_id": fills.at[index, "exec_id"], "column": "price",
                       "line": int(index) + 2}, **books_not_computable()}


@fault("missing_column", 0, ("broker_trades",), "broker_trades.csv arrived without its fee column.", True)
def missing_column(day_dir, rng, ctx):
    confirms = ctx.read("broker_trades.csv")
    ctx.write("broker_trades.csv", confirms.drop(columns=["fee"]))
    ctx.changes.append({"file": "broker_trades.csv", "action": "removed_column", "column": "fee"})
    return {"target": {"file": "broker_trades.csv", "column": "fee"}, **books_not_computable()}


@fault("unreadable_encoding", 0, ("orders",), "orders.csv holds bytes that are not UTF-8 (a cp1252 character).", True)
def unreadable_encoding(day_dir, rng, ctx):
    path = day_dir / "orders.csv"
    lines = path.read_bytes().split(b"\n")
    data_lines = [i for i in range(1, len(lines)) if lines[i]]
    line = ctx.choose(data_lines, "order")
    original = lines[line]
    first, _, rest = original.partition(b",")  # order_id, then the rest of the line
    # A cp1252 e-acute (0xE9) followed by a comma is not valid UTF-8.
    lines[line] = first + b"\xe9," + rest
    path.write_bytes(b"\n".join(lines))
    ctx.changes.append({"file": "orders.csv", "action": "bytes_replaced", "line": line + 1,
                        "key": {"order_id": first.decode()}, "column": "order_id",
                        "original": original.hex(), "new": lines[line].hex(), "byte_offset": len(first)})
    return {"target": {"file": "orders.csv", "line": line + 1, "order_id": first.decode()}, **books_not_computable()}


# =========================================================================== quotes (1)
# Quote faults never touch a symbol's last primary quote, so the EOD mark stays consistent with
# the last quote and only the quote check fires.


@fault("null_bid", 1, ("quotes",), "About 15% of two symbols' primary-vendor quotes have an empty bid.", False)
def null_bid(day_dir, rng, ctx):
    filename = f"quotes_{ctx.primary()}.csv"
    quotes = ctx.read(filename)
    candidates = ctx.quiet_symbols(ctx.open_symbols)
    if len(candidates) < 2:
        candidates = ctx.open_symbols
    if len(candidates) < 2:
        raise FaultNotApplicable(f"cannot apply null_bid on {ctx.day}: fewer than two quoted securities")
    symbols = sorted((candidates[int(i)] for i in rng.choice(len(candidates), 2, replace=False)),
                     key=ctx.security_order.__getitem__)
    emptied = {}
    for symbol in symbols:
        rows = _symbol_rows(quotes, symbol)[:-1]
        chosen = rows[np.sort(rng.choice(len(rows), max(1, round(0.15 * len(rows))), replace=False))]
        for index in chosen:
            ctx.set_cell(filename, quotes, index, "bid", "", ("symbol", "ts"))
        emptied[symbol] = len(chosen)
    ctx.write(filename, quotes)
    return {"target": {"file": filename, "symbols": symbols, "rows_emptied": emptied}, **no_book_effect()}


def _few_primary_rows(ctx: FaultContext, count: int):
    filename = f"quotes_{ctx.primary()}.csv"
    quotes = ctx.read(filename)
    symbol = ctx.quoted_symbol()
    rows = _symbol_rows(quotes, symbol)[:-1]
    if len(rows) == 0:
        raise FaultNotApplicable(f"{symbol} has a single quote on {ctx.day}")
    chosen = rows[np.sort(ctx.rng.choice(len(rows), min(count, len(rows)), replace=False))]
    return filename, quotes, symbol, chosen


@fault("crossed_quote", 1, ("quotes",), "A few primary quotes of one symbol have the bid above the ask.", False)
def crossed_quote(day_dir, rng, ctx):
    filename, quotes, symbol, rows = _few_primary_rows(ctx, 5)
    for index in rows:  # bid and ask swapped: the spread is at least one tick, so bid > ask
        bid, ask = quotes.at[index, "bid"], quotes.at[index, "ask"]
        ctx.set_cell(filename, quotes, index, "bid", ask, ("symbol", "ts"))
        ctx.set_cell(filename, quotes, index, "ask", bid, ("symbol", "ts"))
    ctx.write(filename, quotes)
    return {"target": {"file": filename, "symbol": symbol, "rows": len(rows)}, **no_book_effect()}


@fault("zero_price", 1, ("quotes",), "A few primary quotes of one symbol have a bid of zero.", False)
def zero_price(day_dir, rng, ctx):
    filename, quotes, symbol, rows = _few_primary_rows(ctx, 5)
    for index in rows:
        ctx.set_cell(filename, quotes, index, "bid", format_units(0), ("symbol", "ts"))
    ctx.write(filename, quotes)
    return {"target": {"file": filename, "symbol": symbol, "rows": len(rows)}, **no_book_effect()}


@fault("negative_price", 1, ("quotes",), "A few primary quotes of one symbol have a negative bid.", False)
def negative_price(day_dir, rng, ctx):
    filename, quotes, symbol, rows = _few_primary_rows(ctx, 3)
    for index in rows:
        ctx.set_cell(filename, quotes, index, "bid", "-" + quotes.at[index, "bid"], ("symbol", "ts"))
    ctx.write(filename, quotes)
    return {"target": {"file": filename, "symbol": symbol, "rows": len(rows)}, **no_book_effect()}


@fault("quote_ts_outside_date", 1, ("quotes",),
       "The last three primary quotes of one symbol are stamped just after midnight, on the next UTC date.", False)
def quote_ts_outside_date(day_dir, rng, ctx):
    filename = f"quotes_{ctx.primary()}.csv"
    quotes = ctx.read(filename)
    symbol = ctx.quoted_symbol()
    rows = _symbol_rows(quotes, symbol)[-3:]
    # The last rows move, so the symbol's timestamps stay non-decreasing: only the date is wrong.
    next_midnight = date_start_ms(ctx.day + dt.timedelta(days=1))
    for offset, index in enumerate(rows):
        ctx.set_cell(filename, quotes, index, "ts", format_ts(next_midnight + 1_000 * (offset + 1)), ("symbol", "ts"))
    ctx.write(filename, quotes)
    in_date_rows = _symbol_rows(quotes, symbol)[:-3]
    last_in_date_mid = _mid_and_half(quotes, in_date_rows[-1])[0] if len(in_date_rows) else None
    return {"target": {"file": filename, "symbol": symbol, "rows": len(rows)},
            "side_effects": "the mark equals the mid of the moved last quote; the last in-date quote differs by "
                            "ordinary tick noise",
            "last_in_date_mid": None if last_in_date_mid is None else money(last_in_date_mid),
            **no_book_effect()}


@fault("quote_out_of_order", 1, ("quotes",), "Three pairs of one symbol's primary quotes have swapped timestamps.",
       False)
def quote_out_of_order(day_dir, rng, ctx):
    filename = f"quotes_{ctx.primary()}.csv"
    quotes = ctx.read(filename)
    symbol = ctx.quoted_symbol()
    rows = _symbol_rows(quotes, symbol)[:-1]
    # Adjacent pairs with distinct times, not overlapping: each swap makes time go backwards once.
    pairs, used = [], set()
    for position in rng.permutation(max(0, len(rows) - 1)):
        first, second = rows[position], rows[position + 1]
        if first in used or second in used or quotes.at[first, "ts"] == quotes.at[second, "ts"]:
            continue
        pairs.append((first, second))
        used.update((first, second))
        if len(pairs) == 3:
            break
    if not pairs:
        raise FaultNotApplicable(f"{symbol} has no two quotes with different times on {ctx.day}")
    for first, second in sorted(pairs):
        earlier, later = quotes.at[first, "ts"], quotes.at[second, "ts"]
        ctx.set_cell(filename, quotes, first, "ts", later, ("symbol", "ts"))
        ctx.set_cell(filename, quotes, second, "ts", earlier, ("symbol", "ts"))
    ctx.write(filename, quotes)
    return {"target": {"file": filename, "symbol": symbol, "swapped_pairs": len(pairs)}, **no_book_effect()}


@fault("missing_symbol_quotes", 1, ("quotes",),
       "One security whose exchange is open has no quotes at all, from any vendor.", False)
def missing_symbol_quotes(day_dir, rng, ctx):
    symbol = ctx.quoted_symbol()
    for vendor in ctx.vendors:
        filename = f"quotes_{vendor}.csv"
        quotes = ctx.read(filename)
        rows = _symbol_rows(quotes, symbol)
        ctx.changes.append({"file": filename, "action": "removed_rows", "key": {"symbol": symbol}, "rows": len(rows),
                            "first_ts": quotes.at[rows[0], "ts"], "last_ts": quotes.at[rows[-1], "ts"]})
        ctx.write(filename, quotes.drop(rows))
    return {"target": {"symbol": symbol, "exchange": ctx.securities[symbol].exchange}, **no_book_effect()}


@fault("stale_feed", 1, ("quotes",),
       "One symbol is silent at the primary vendor for 65% of its session (no quotes in the middle of the day).",
       False)
def stale_feed(day_dir, rng, ctx):
    filename = f"quotes_{ctx.primary()}.csv"
    quotes = ctx.read(filename)
    symbol = ctx.quoted_symbol()
    session = ctx.state.market.sessions[ctx.open_symbols.index(symbol)]
    length = session.close_ms - session.open_ms
    silent_from, silent_to = session.open_ms + int(0.20 * length), session.open_ms + int(0.85 * length)
    rows = _symbol_rows(quotes, symbol)
    stamps = np.array([parse_ts(t) for t in quotes.loc[rows, "ts"]])
    gone = rows[(stamps >= silent_from) & (stamps < silent_to)]
    ctx.changes.append({"file": filename, "action": "removed_rows", "key": {"symbol": symbol}, "rows": len(gone),
                        "from_ts": format_ts(silent_from), "to_ts": format_ts(silent_to)})
    ctx.write(filename, quotes.drop(gone))
    return {"target": {"file": filename, "symbol": symbol, "silent_from": format_ts(silent_from),
                       "silent_to": format_ts(silent_to), "silent_fraction_of_session": 0.65},
            **no_book_effect()}


@fault("decimal_shift_quotes", 1, ("quotes",),
       "One symbol's primary quotes are 10 times too high for part of the day (a decimal-point shift).", False)
def decimal_shift_quotes(day_dir, rng, ctx):
    filename = f"quotes_{ctx.primary()}.csv"
    quotes = ctx.read(filename)
    symbol = ctx.quoted_symbol()
    rows = _symbol_rows(quotes, symbol)
    shifted = rows[int(0.3 * len(rows)):max(int(0.3 * len(rows)) + 1, int(0.6 * len(rows)))]
    shifted = shifted[shifted != rows[-1]]
    if len(shifted) == 0:
        raise FaultNotApplicable(f"{symbol} has too few quotes on {ctx.day} to shift part of its day")
    for index in shifted:
        for column in ("bid", "ask"):
            ctx.set_cell(filename, quotes, index, column, format_units(parse_units(quotes.at[index, column]) * 10),
                         ("symbol", "ts"))
    ctx.write(filename, quotes)
    return {"target": {"file": filename, "symbol": symbol, "rows": len(shifted), "factor": 10,
                       "from_ts": quotes.at[shifted[0], "ts"], "to_ts": quotes.at[shifted[-1], "ts"]},
            "side_effects": "the secondary vendor disagrees with the primary over the shifted stretch",
            **no_book_effect()}


@fault("copied_price", 1, ("quotes",),
       "One symbol's primary quotes carry another symbol's prices (a mapping error at the vendor).", False)
def copied_price(day_dir, rng, ctx):
    filename = f"quotes_{ctx.primary()}.csv"
    quotes = ctx.read(filename)
    market = ctx.state.market
    sessions = {s: market.sessions[i] for i, s in enumerate(ctx.open_symbols)}
    pairs = [(a, b) for a in ctx.quiet_symbols(ctx.open_symbols) for b in ctx.open_symbols
             if a != b and abs(ctx.close[a] / ctx.close[b] - 1) > 0.10]
    # Prefer a source quoted over the same session, so every copied quote is a live one.
    same_session = [(a, b) for a, b in pairs if sessions[a][:2] == sessions[b][:2]]
    target, source = ctx.choose(same_session or pairs, "two quoted securities with prices 10% apart")
    rows = _symbol_rows(quotes, target)[:-1]
    source_rows = _symbol_rows(quotes, source)
    source_ts = quotes.loc[source_rows, "ts"].to_numpy(dtype=str)
    for index in rows:
        # The source's quote as of the same time (ISO timestamps sort as text).
        at = max(0, int(np.searchsorted(source_ts, quotes.at[index, "ts"], side="right")) - 1)
        for column in ("bid", "ask"):
            ctx.set_cell(filename, quotes, index, column, quotes.at[source_rows[at], column], ("symbol", "ts"))
    ctx.write(filename, quotes)
    return {"target": {"file": filename, "symbol": target, "copied_from": source, "rows": len(rows)},
            "side_effects": "the secondary vendor disagrees with the primary for the symbol",
            **no_book_effect()}


# =========================================================================== vendors (2)


@fault("vendor_disagreement", 2, ("quotes",), "The secondary vendor's mid is 3% above the primary's for one symbol all day.",
       False)
def vendor_disagreement(day_dir, rng, ctx):
    filename = f"quotes_{ctx.secondary()}.csv"
    quotes = ctx.read(filename)
    symbol = ctx.quoted_symbol()
    rows = _symbol_rows(quotes, symbol)
    _reprice(ctx, filename, quotes, rows, symbol, lambda mid: mid * 1.03)
    ctx.write(filename, quotes)
    return {"target": {"file": filename, "symbol": symbol, "rows": len(rows), "mid_factor": 1.03},
            **no_book_effect()}


# =========================================================================== marks (3)


def _held_mark_target(ctx: FaultContext, *, open_only: bool = True) -> str:
    held = ctx.held_symbols(open_only=open_only) or ctx.held_symbols(open_only=False)
    return ctx.choose([s for s in held if s not in ctx.action_symbols] or held, "held security")


@fault("eod_mark_missing", 3, ("eod_prices",), "A held security has no EOD mark.", True)
def eod_mark_missing(day_dir, rng, ctx):
    symbol = _held_mark_target(ctx, open_only=False)
    marks = ctx.read("eod_prices.csv")
    index = marks.index[marks["symbol"] == symbol][0]
    ctx.removed_row("eod_prices.csv", {"symbol": symbol}, marks.loc[index].to_dict())
    ctx.write("eod_prices.csv", marks.drop(index))
    return {"target": {"symbol": symbol, "holders": ctx.holders(symbol)},
            "expected_position_diff": [], "expected_cash_diff": [],
            "expected_market_value_diff": None, "expected_pnl_diff": None}


@fault("eod_mark_duplicate", 3, ("eod_prices",),
       "A held security has two different EOD marks (today's and yesterday's close re-sent).", True)
def eod_mark_duplicate(day_dir, rng, ctx):
    held = [s for s in ctx.held_symbols() if ctx.close[s] != ctx.previous_close[s]]
    symbol = ctx.choose([s for s in held if s not in ctx.action_symbols] or held, "held security whose close moved")
    marks = ctx.read("eod_prices.csv")
    index = marks.index[marks["symbol"] == symbol][0]
    duplicate = marks.loc[index].to_dict() | {"close": format_units(ctx.previous_close[symbol])}
    position = marks.index.get_loc(index) + 1
    marks = pd.concat([marks.iloc[:position], pd.DataFrame([duplicate]), marks.iloc[position:]], ignore_index=True)
    ctx.added_row("eod_prices.csv", {"symbol": symbol}, duplicate)
    ctx.write("eod_prices.csv", marks)
    return {"target": {"symbol": symbol, "closes": [format_units(ctx.close[symbol]), duplicate["close"]]},
            "expected_position_diff": [], "expected_cash_diff": [],
            "expected_market_value_diff": None, "expected_pnl_diff": None}


def _mark_fault(ctx: FaultContext, new_close: Callable[[int], int], *, open_only=True) -> dict:
    symbol = _held_mark_target(ctx, open_only=open_only)
    close = new_close(ctx.close[symbol])
    _set_mark(ctx, symbol, close)
    market_values, pnl = ctx.mark_change_effects(symbol, close)
    return {"target": {"symbol": symbol, "original_close": money(ctx.close[symbol]), "new_close": money(close)},
            "expected_position_diff": [], "expected_cash_diff": [],
            "expected_market_value_diff": market_values, "expected_pnl_diff": pnl}


@fault("eod_mark_zero", 3, ("eod_prices",), "A held security's EOD mark is zero.", True)
def eod_mark_zero(day_dir, rng, ctx):
    return _mark_fault(ctx, lambda close: 0, open_only=False)


@fault("eod_mark_decimal_shift", 3, ("eod_prices",),
       "A held security's EOD mark is 100 times too high; the broker kept the right price.", True)
def eod_mark_decimal_shift(day_dir, rng, ctx):
    record = _mark_fault(ctx, lambda close: close * 100)
    record["side_effects"] = "the broker's close_price for the symbol disagrees with the firm's mark (invariant 10)"
    return record


# Every source agrees on the new price, so the books are not known to be wrong: a large move
# without a corporate action is shown for a look (a takeover bid looks exactly like this).
@fault("price_spike_unexplained", 3, ("quotes", "eod_prices", "broker_positions"),
       "A held security's quotes and mark are 45% above yesterday's close with no corporate action "
       "(vendors and broker agree on the new price).", False)
def price_spike_unexplained(day_dir, rng, ctx):
    symbol = ctx.choose(ctx.quiet_symbols(ctx.held_symbols()), "held security with an open exchange")
    for vendor in ctx.vendors:
        filename = f"quotes_{vendor}.csv"
        quotes = ctx.read(filename)
        _reprice(ctx, filename, quotes, _symbol_rows(quotes, symbol), symbol, lambda mid: mid * 1.45,
                 lambda half: half * 1.45)
        ctx.write(filename, quotes)
        if vendor == ctx.primary():
            close = _last_mid(quotes, symbol)
    _set_mark(ctx, symbol, close)
    _update_broker_marks(ctx, symbol, close)
    market_values, pnl = ctx.mark_change_effects(symbol, close)
    return {"target": {"symbol": symbol, "previous_close": money(ctx.previous_close[symbol]),
                       "original_close": money(ctx.close[symbol]), "new_close": money(close),
                       "move_vs_previous_close": round(close / ctx.previous_close[symbol] - 1, 4)},
            "expected_position_diff": [], "expected_cash_diff": [],
            "expected_market_value_diff": market_values, "expected_pnl_diff": pnl}


# =========================================================================== FX (4)


def _fx_rows(ctx: FaultContext):
    rates = ctx.read("fx_rates.csv")
    return rates, {pair: index for index, pair in zip(rates.index, rates["pair"])}


@fault("fx_negative_rate", 4, ("fx_rates",), "The JPYUSD rate is negative.", True)
def fx_negative_rate(day_dir, rng, ctx):
    rates, where = _fx_rows(ctx)
    crossed = {c for pair in CROSS_PAIRS for c in pair}
    # A leg that no cross pair uses, so the cross check is not disturbed as well.
    pair = next((f"{c}USD" for c in USD_LEGS if c not in crossed and f"{c}USD" in where), None)
    if pair is None:
        raise FaultNotApplicable("no USD leg outside the cross pairs")
    index = where[pair]
    ctx.set_cell("fx_rates.csv", rates, index, "rate", "-" + rates.at[index, "rate"], ("pair",))
    ctx.write("fx_rates.csv", rates)
    return {"target": {"pair": pair}, "expected_position_diff": [], "expected_cash_diff": [],
            "expected_market_value_diff": None, "expected_pnl_diff": None}


# Blocking although values convert through the USD legs: three rates that contradict each other
# mean one of them is wrong, and it may be a leg.
@fault("fx_cross_inconsistent", 4, ("fx_rates",), "The EURGBP cross rate is 2% off EURUSD / GBPUSD.", True)
def fx_cross_inconsistent(day_dir, rng, ctx):
    rates, where = _fx_rows(ctx)
    base, quote = CROSS_PAIRS[0]
    pair = f"{base}{quote}"
    index = where[pair]
    new = int(round(parse_units(rates.at[index, "rate"], RATE_SCALE) * 1.02))
    ctx.set_cell("fx_rates.csv", rates, index, "rate", format_rate(new), ("pair",))
    ctx.write("fx_rates.csv", rates)
    # Values convert through the USD legs, which are unchanged: the computed books do not move.
    return {"target": {"pair": pair, "factor": 1.02}, **no_book_effect()}


@fault("fx_missing_leg", 4, ("fx_rates",), "The GBPUSD rate is missing.", True)
def fx_missing_leg(day_dir, rng, ctx):
    rates, where = _fx_rows(ctx)
    index = where["GBPUSD"]
    ctx.removed_row("fx_rates.csv", {"pair": "GBPUSD"}, rates.loc[index].to_dict())
    ctx.write("fx_rates.csv", rates.drop(index))
    return {"target": {"pair": "GBPUSD"}, "expected_position_diff": [], "expected_cash_diff": [],
            "expected_market_value_diff": None, "expected_pnl_diff": None}


# =========================================================================== orders to executions (5)


def _next_order_id(ctx: FaultContext) -> str:
    return f"ORD-{ctx.stamp()}-{len(ctx.orders) + 1:05d}"  # the next number the OMS would have used


def _next_exec_ids(ctx: FaultContext, broker: str) -> tuple[str, str]:
    number = len(ctx.fills) + 1
    return f"EX-{ctx.stamp()}-{number:05d}", f"{broker}-{ctx.stamp()}-{number:06d}"


@fault("orphan_fill", 5, ("executions",),
       "A fill refers to an order id that is not in orders.csv (the broker confirmed the fill).", False)
def orphan_fill(day_dir, rng, ctx):
    fills = ctx.read("executions.csv")
    index = ctx.choose(list(fills.index), "fill")
    ctx.set_cell("executions.csv", fills, index, "order_id", _next_order_id(ctx), ("exec_id",))
    ctx.write("executions.csv", fills)
    return {"target": {"exec_id": fills.at[index, "exec_id"], "order_id": fills.at[index, "order_id"]},
            **no_book_effect()}


def _fill_row(fill_values: dict) -> dict:
    return {column: fill_values[column] for column in
            ("exec_id", "order_id", "ts", "account", "symbol", "side", "quantity", "price", "currency", "fee",
             "broker", "venue")}


def _append_fill_and_confirm(ctx: FaultContext, row: dict, received_ms: int, broker_ref: str, *,
                             execution: bool = True, confirm: bool = True) -> None:
    if execution:
        fills = ctx.read("executions.csv")
        ctx.write("executions.csv", pd.concat([fills, pd.DataFrame([_fill_row(row)])], ignore_index=True))
        ctx.added_row("executions.csv", {"exec_id": row["exec_id"]}, _fill_row(row))
    if confirm:
        confirms = ctx.read("broker_trades.csv")
        settle = confirms["settle_date"].iloc[0] if len(confirms) else ""
        confirm_row = {"broker": row["broker"], "broker_ref": broker_ref, "exec_id": row["exec_id"],
                       "trade_date": ctx.day.isoformat(), "settle_date": settle, "account": row["account"],
                       "symbol": row["symbol"], "side": row["side"], "quantity": row["quantity"],
                       "price": row["price"], "fee": row["fee"], "received_ts": format_ts(received_ms)}
        ctx.write("broker_trades.csv", pd.concat([confirms, pd.DataFrame([confirm_row])], ignore_index=True))
        ctx.added_row("broker_trades.csv", {"broker": row["broker"], "broker_ref": broker_ref}, confirm_row)


def _fee(quantity: int, price: int) -> int:
    return max(1, (quantity * price + 500_000) // 1_000_000) * 100  # 1 bp, to the cent, at least a cent


@fault("overfill", 5, ("executions", "broker_trades", "broker_positions", "broker_cash"),
       "An order's fills exceed its quantity: one more fill was executed, confirmed and booked by the broker.", False)
def overfill(day_dir, rng, ctx):
    filled = defaultdict(int)
    last_fill = {}
    for fill in ctx.fills:
        filled[fill.order_id] += fill.quantity
        last_fill[fill.order_id] = fill
    complete = [o for o in ctx.orders if filled[o.order_id] == o.quantity]
    order = ctx.choose(complete or [o for o in ctx.orders if o.order_id in last_fill], "filled order")
    previous = last_fill[order.order_id]
    security = ctx.securities[order.symbol]
    lots = max(1, round(0.1 * order.quantity / security.lot_size))
    quantity = order.quantity - filled[order.order_id] + lots * security.lot_size
    session = ctx.state.market.sessions[ctx.open_symbols.index(order.symbol)]
    ts = min(previous.ts + 1_500, session.close_ms - 1)
    exec_id, broker_ref = _next_exec_ids(ctx, previous.broker)
    fee = _fee(quantity, previous.price)
    row = {"exec_id": exec_id, "order_id": order.order_id, "ts": format_ts(ts), "account": order.account,
           "symbol": order.symbol, "side": order.side, "quantity": str(quantity), "price": format_units(previous.price),
           "currency": security.currency, "fee": format_units(fee), "broker": previous.broker, "venue": previous.venue}
    _append_fill_and_confirm(ctx, row, min(ts + 60_000, ctx.cutoff_ms() - 1_000), broker_ref)
    signed = quantity if order.side == "BUY" else -quantity
    cash = -signed * previous.price - fee
    ctx.book_at_broker(order.account, order.symbol, signed, cash)
    market_values, pnl = ctx.extra_trade_effects(order.account, order.symbol, signed, previous.price, fee)
    return {"target": {"order_id": order.order_id, "order_quantity": order.quantity,
                       "filled_quantity": filled[order.order_id] + quantity, "extra_exec_id": exec_id,
                       "extra_quantity": quantity},
            "expected_position_diff": [], "expected_cash_diff": [],
            "expected_market_value_diff": market_values, "expected_pnl_diff": pnl}


def _orders_with_fills(ctx: FaultContext, predicate=lambda order: True) -> list:
    filled = {f.order_id for f in ctx.fills}
    return [o for o in ctx.orders if o.order_id in filled and predicate(o)]


def _edit_order(ctx: FaultContext, order_id: str, column: str, new: str) -> pd.DataFrame:
    orders = ctx.read("orders.csv")
    index = orders.index[orders["order_id"] == order_id][0]
    ctx.set_cell("orders.csv", orders, index, column, new, ("order_id",))
    ctx.write("orders.csv", orders)
    return orders


# The three mismatches below edit the order, not the fill: the fill, its confirm and the books
# stay as they were, so only the order-to-fill check (invariant 5) is broken.


@fault("fill_side_mismatch", 5, ("orders",), "A MARKET order's side differs from the side of its fills.", False)
def fill_side_mismatch(day_dir, rng, ctx):
    order = ctx.choose(_orders_with_fills(ctx, lambda o: o.order_type == "MARKET"), "filled MARKET order")
    new_side = "SELL" if order.side == "BUY" else "BUY"
    _edit_order(ctx, order.order_id, "side", new_side)
    return {"target": {"order_id": order.order_id, "fill_side": order.side, "order_side": new_side,
                       "exec_ids": [f.exec_id for f in ctx.fills if f.order_id == order.order_id]},
            **no_book_effect()}


@fault("fill_account_mismatch", 5, ("orders",), "An order's account differs from the account its fills were booked to.",
       False)
def fill_account_mismatch(day_dir, rng, ctx):
    order = ctx.choose(_orders_with_fills(ctx), "filled order")
    accounts = list(ctx.accounts)
    new_account = accounts[(accounts.index(order.account) + 1) % len(accounts)]
    _edit_order(ctx, order.order_id, "account", new_account)
    return {"target": {"order_id": order.order_id, "fill_account": order.account, "order_account": new_account,
                       "exec_ids": [f.exec_id for f in ctx.fills if f.order_id == order.order_id]},
            **no_book_effect()}


@fault("limit_breach", 5, ("orders",),
       "A LIMIT buy was filled above its limit price (a LIMIT sell below it if no buy was filled).", False)
def limit_breach(day_dir, rng, ctx):
    buys = _orders_with_fills(ctx, lambda o: o.order_type == "LIMIT" and o.side == "BUY")
    sells = _orders_with_fills(ctx, lambda o: o.order_type == "LIMIT" and o.side == "SELL")
    order = ctx.choose(buys or sells, "filled LIMIT order")
    tick = ctx.securities[order.symbol].tick
    prices = [f.price for f in ctx.fills if f.order_id == order.order_id]
    if order.side == "BUY":
        reference = max(prices)
        step = max(tick, int(round(reference * 0.002 / tick)) * tick)
        new_limit = max(tick, reference - step)  # the fills are now above the limit
    else:
        reference = min(prices)
        step = max(tick, int(round(reference * 0.002 / tick)) * tick)
        new_limit = reference + step
    _edit_order(ctx, order.order_id, "limit_price", format_units(new_limit))
    return {"target": {"order_id": order.order_id, "side": order.side, "limit_price": format_units(new_limit),
                       "original_limit_price": format_units(order.limit_price),
                       "fill_prices": [format_units(p) for p in prices],
                       "exec_ids": [f.exec_id for f in ctx.fills if f.order_id == order.order_id]},
            **no_book_effect()}


# =========================================================================== executions to broker (6)


def _pick_confirm(ctx: FaultContext, predicate=lambda row: True):
    confirms = ctx.read("broker_trades.csv")
    candidates = [i for i in confirms.index if predicate(confirms.loc[i])]
    return confirms, ctx.choose(candidates, "broker confirm")


@fault("missing_confirm", 6, ("broker_trades",),
       "One fill has no broker confirm (the broker's statements still include it).", False)
def missing_confirm(day_dir, rng, ctx):
    confirms, index = _pick_confirm(ctx)
    row = confirms.loc[index].to_dict()
    ctx.removed_row("broker_trades.csv", {"broker": row["broker"], "broker_ref": row["broker_ref"]}, row)
    ctx.write("broker_trades.csv", confirms.drop(index))
    return {"target": {"exec_id": row["exec_id"], "broker_ref": row["broker_ref"]}, **no_book_effect()}


@fault("late_confirm", 6, ("broker_trades",), "One confirm arrived after the 23:00 UTC cut-off; it matches its fill.",
       False)
def late_confirm(day_dir, rng, ctx):
    confirms, index = _pick_confirm(ctx)
    late = ctx.cutoff_ms() + int(rng.integers(60_000, 50 * 60_000))  # still on the trading date
    ctx.set_cell("broker_trades.csv", confirms, index, "received_ts", format_ts(late), ("broker", "broker_ref"))
    ctx.write("broker_trades.csv", confirms)
    return {"target": {"exec_id": confirms.at[index, "exec_id"], "received_ts": format_ts(late)}, **no_book_effect()}


def _confirm_edit(ctx: FaultContext, column: str, change: Callable[[str, Security], str]) -> dict:
    confirms, index = _pick_confirm(ctx, lambda row: row["symbol"] in ctx.securities)
    security = ctx.securities[confirms.at[index, "symbol"]]
    original = confirms.at[index, column]
    ctx.set_cell("broker_trades.csv", confirms, index, column, change(original, security), ("broker", "broker_ref"))
    ctx.write("broker_trades.csv", confirms)
    return {"target": {"exec_id": confirms.at[index, "exec_id"], "column": column, "fill_value": original,
                       "confirm_value": confirms.at[index, column]}, **no_book_effect()}


@fault("confirm_price_off", 6, ("broker_trades",), "One confirm's price is a few cents off the fill's price.", False)
def confirm_price_off(day_dir, rng, ctx):
    return _confirm_edit(ctx, "price", lambda old, sec: format_units(parse_units(old) + max(300, 3 * sec.tick)))


@fault("confirm_quantity_off", 6, ("broker_trades",), "One confirm's quantity is one lot more than the fill's.", False)
def confirm_quantity_off(day_dir, rng, ctx):
    return _confirm_edit(ctx, "quantity", lambda old, sec: str(int(old) + sec.lot_size))


@fault("confirm_fee_off", 6, ("broker_trades",), "One confirm's fee is 2.50 more than the fill's fee.", False)
def confirm_fee_off(day_dir, rng, ctx):
    return _confirm_edit(ctx, "fee", lambda old, sec: format_units(parse_units(old) + 25_000))


@fault("duplicate_fill", 6, ("executions",),
       "The firm's execution system recorded one fill twice under a new exec_id; the broker confirmed it once.", True)
def duplicate_fill(day_dir, rng, ctx):
    fill = ctx.choose(ctx.fills, "fill")
    fills = ctx.read("executions.csv")
    index = fills.index[fills["exec_id"] == fill.exec_id][0]
    exec_id, _ = _next_exec_ids(ctx, fill.broker)
    row = fills.loc[index].to_dict() | {"exec_id": exec_id}
    _append_fill_and_confirm(ctx, row, 0, "", confirm=False)
    firm_quantity = ctx.positions_end.get((fill.account, fill.symbol), 0) + fill.signed_quantity
    firm_cash = ctx.firm_cash(fill.account, fill.currency) + fill.cash_flow
    market_values, pnl = ctx.extra_trade_effects(fill.account, fill.symbol, fill.signed_quantity, fill.price, fill.fee)
    return {"target": {"exec_id": fill.exec_id, "duplicate_exec_id": exec_id},
            "expected_position_diff": [ctx.position_diff(fill.account, fill.symbol, firm_quantity)],
            "expected_cash_diff": [ctx.cash_diff(fill.account, fill.currency, firm_cash)],
            "expected_market_value_diff": market_values, "expected_pnl_diff": pnl}


@fault("orphan_confirm", 6, ("broker_trades", "broker_positions", "broker_cash"),
       "The broker confirmed and booked a trade the firm has no fill for.", True)
def orphan_confirm(day_dir, rng, ctx):
    symbol = ctx.choose([s for s in ctx.open_symbols if s not in ctx.action_symbols] or ctx.open_symbols,
                        "security with an open exchange")
    security = ctx.securities[symbol]
    account = ctx.choose(list(ctx.accounts), "account")
    side = "BUY" if rng.random() < 0.5 else "SELL"
    quantity = int(rng.integers(1, 11)) * max(100, security.lot_size)
    session = ctx.state.market.sessions[ctx.open_symbols.index(symbol)]
    ts = int(rng.integers(session.open_ms + 600_000, max(session.open_ms + 600_001, session.close_ms - 600_000)))
    price, _ = ctx.state.market.quote_at(ctx.state.writer.by_symbol[symbol], ts)
    fee = _fee(quantity, price)
    broker = ctx.accounts[account].prime_broker
    exec_id, broker_ref = _next_exec_ids(ctx, broker)
    row = {"exec_id": exec_id, "account": account, "symbol": symbol, "side": side, "quantity": str(quantity),
           "price": format_units(price), "fee": format_units(fee), "broker": broker}
    _append_fill_and_confirm(ctx, row, ts + 120_000, broker_ref, execution=False)
    signed = quantity if side == "BUY" else -quantity
    cash = -signed * price - fee
    ctx.book_at_broker(account, symbol, signed, cash)
    return {"target": {"exec_id": exec_id, "broker_ref": broker_ref, "account": account, "symbol": symbol,
                       "side": side, "quantity": quantity},
            "expected_position_diff": [ctx.position_diff(account, symbol, ctx.positions_end.get((account, symbol), 0))],
            "expected_cash_diff": [ctx.cash_diff(account, security.currency, ctx.firm_cash(account, security.currency))],
            "expected_market_value_diff": [], "expected_pnl_diff": []}


# =========================================================================== positions (7)


@fault("position_off_at_broker", 7, ("broker_positions",),
       "The broker's quantity for one holding is 100 shares more than the books (market value consistent).", False)
def position_off_at_broker(day_dir, rng, ctx):
    positions = ctx.read("broker_positions.csv")
    index = ctx.choose(list(positions.index), "broker position")
    account, symbol = positions.at[index, "account"], positions.at[index, "symbol"]
    quantity = int(positions.at[index, "quantity"])
    delta = 100 if quantity != -100 else -100
    keys = ("account", "symbol")
    ctx.set_cell("broker_positions.csv", positions, index, "quantity", str(quantity + delta), keys)
    ctx.set_cell("broker_positions.csv", positions, index, "market_value",
                 format_units((quantity + delta) * parse_units(positions.at[index, "close_price"])), keys)
    ctx.write("broker_positions.csv", positions)
    return {"target": {"account": account, "symbol": symbol, "broker_quantity_delta": delta},
            "expected_position_diff": [ctx.position_diff(account, symbol, quantity)],
            "expected_cash_diff": [], "expected_market_value_diff": [], "expected_pnl_diff": []}


@fault("unrecorded_split", 7, ("quotes", "eod_prices", "broker_positions"),
       "A held security split 2-for-1 today: quotes, mark and the broker's quantities show it, "
       "corporate_actions.csv does not.", True)
def unrecorded_split(day_dir, rng, ctx):
    held_then = set(ctx.held_symbols(at_start=True))
    symbol = ctx.choose(ctx.quiet_symbols([s for s in ctx.open_symbols if s in held_then]),
                        "security held since yesterday with an open exchange")
    ratio = 2
    tick = ctx.securities[symbol].tick
    for vendor in ctx.vendors:
        filename = f"quotes_{vendor}.csv"
        quotes = ctx.read(filename)
        rows = _symbol_rows(quotes, symbol)
        # Prices halve on the tick grid; displayed sizes double (they count shares).
        _reprice(ctx, filename, quotes, rows, symbol, lambda mid: (mid // tick // ratio) * tick,
                 lambda half: max(tick, (half // tick // ratio) * tick))
        for index in rows:
            for column in ("bid_size", "ask_size"):
                ctx.set_cell(filename, quotes, index, column, str(int(quotes.at[index, column]) * ratio),
                             ("symbol", "ts"))
        ctx.write(filename, quotes)
        if vendor == ctx.primary():
            close = _last_mid(quotes, symbol)
    _set_mark(ctx, symbol, close)
    # The broker splits yesterday's holding; today's fills (if any) are booked as recorded.
    start = ctx.holders(symbol, at_start=True)
    broker_quantities = {a: ctx.positions_end.get((a, symbol), 0) + (ratio - 1) * q for a, q in start.items()}
    _update_broker_marks(ctx, symbol, close, broker_quantities)
    market_values, pnl = ctx.mark_change_effects(symbol, close)
    return {"target": {"symbol": symbol, "ratio": ratio, "original_close": money(ctx.close[symbol]),
                       "new_close": money(close), "holders_at_start": start,
                       "fills_on_date": sum(1 for f in ctx.fills if f.symbol == symbol)},
            "expected_position_diff": [ctx.position_diff(a, symbol, ctx.positions_end.get((a, symbol), 0))
                                       for a in start],
            "expected_cash_diff": [],
            "expected_market_value_diff": market_values, "expected_pnl_diff": pnl}


# =========================================================================== cash (8)


@fault("cash_off_at_broker", 8, ("broker_cash",), "One broker cash balance is 1,234.56 higher than the books.", False)
def cash_off_at_broker(day_dir, rng, ctx):
    cash = ctx.read("broker_cash.csv")
    candidates = [i for i in cash.index if cash.at[i, "currency"] != "JPY"] or list(cash.index)
    index = ctx.choose(candidates, "broker cash balance")
    account, currency = cash.at[index, "account"], cash.at[index, "currency"]
    firm = parse_units(cash.at[index, "balance"])
    ctx.set_cell("broker_cash.csv", cash, index, "balance", format_units(firm + 12_345_600), ("account", "currency"))
    ctx.write("broker_cash.csv", cash)
    return {"target": {"account": account, "currency": currency, "amount": 1234.56},
            "expected_position_diff": [], "expected_cash_diff": [ctx.cash_diff(account, currency, firm)],
            "expected_market_value_diff": [], "expected_pnl_diff": []}


@fault("unrecorded_dividend", 8, ("broker_cash",),
       "The broker credited (or, for a short, debited) a cash dividend that is not in corporate_actions.csv.", True)
def unrecorded_dividend(day_dir, rng, ctx):
    held = [s for s in ctx.held_symbols(at_start=True, open_only=False) if s not in ctx.action_symbols]

    def both_ways(symbol):
        quantities = ctx.holders(symbol, at_start=True).values()
        return any(q > 0 for q in quantities) and any(q < 0 for q in quantities)

    symbol = ctx.choose([s for s in held if both_ways(s)] or held, "security held since yesterday")
    security = ctx.securities[symbol]
    amount = max(1, round(ctx.previous_close[symbol] * 0.01 / 100)) * 100  # about 1%, in whole cents
    credits = defaultdict(int)
    for account, quantity in ctx.holders(symbol, at_start=True).items():
        credits[account] += quantity * amount
    for account, credit in credits.items():
        ctx.adjust_broker_cash(account, security.currency, credit)
    return {"target": {"symbol": symbol, "amount": money(amount), "currency": security.currency,
                       "holders_at_start": ctx.holders(symbol, at_start=True)},
            "expected_position_diff": [],
            "expected_cash_diff": [ctx.cash_diff(a, security.currency, ctx.firm_cash(a, security.currency))
                                   for a in credits],
            "expected_market_value_diff": [], "expected_pnl_diff": [],
            "missed_dividend_income": [{"account": a, "currency": security.currency, "amount": money(c)}
                                       for a, c in credits.items()]}


# =========================================================================== P&L (9)


@fault("fx_rate_shift", 9, ("fx_rates",),
       "EURUSD is 10% too high (crosses follow it): base-currency values and P&L move; the broker is unaffected.", True)
def fx_rate_shift(day_dir, rng, ctx):
    currency = "EUR"
    rates, where = _fx_rows(ctx)
    pair = f"{currency}USD"
    shifted = dict(ctx.fx)
    shifted[currency] = int(round(ctx.fx[currency] * 1.10))
    ctx.set_cell("fx_rates.csv", rates, where[pair], "rate", format_rate(shifted[currency]), ("pair",))
    for base, quote in CROSS_PAIRS:  # keep crosses consistent: only the P&L check should fire
        if currency in (base, quote):
            ctx.set_cell("fx_rates.csv", rates, where[f"{base}{quote}"], "rate",
                         format_rate(cross_rate(shifted[base], shifted[quote])), ("pair",))
    ctx.write("fx_rates.csv", rates)

    market_values, pnl = [], defaultdict(Decimal)
    for (account, symbol), quantity in ctx.positions_end.items():
        security = ctx.securities[symbol]
        flows = ctx.flows.get((account, symbol))
        end_value = quantity * ctx.close[symbol]
        other = 0 if flows is None else -flows.trade_cash_flow - flows.fees + flows.dividends
        change = ctx.to_base(account, security.currency, 1, shifted) - ctx.to_base(account, security.currency, 1)
        if change == 0 or (end_value == 0 and other == 0):
            continue
        if end_value:
            market_values.append(ctx.market_value_diff(account, symbol, 0, end_value * change))
        pnl[account] += (end_value + other) * change
    for (account, symbol), flows in ctx.flows.items():  # holdings closed out today still had flows
        if (account, symbol) in ctx.positions_end:
            continue
        change = (ctx.to_base(account, ctx.securities[symbol].currency, 1, shifted)
                  - ctx.to_base(account, ctx.securities[symbol].currency, 1))
        pnl[account] += (-flows.trade_cash_flow - flows.fees + flows.dividends) * change
    return {"target": {"pair": pair, "original_rate": format_rate(ctx.fx[currency]),
                       "new_rate": format_rate(shifted[currency]), "factor": 1.10},
            "expected_position_diff": [], "expected_cash_diff": [],
            "expected_market_value_diff": market_values, "expected_pnl_diff": ctx.pnl_diffs(pnl)}


# =========================================================================== market values (10)


@fault("broker_mv_mismatch", 10, ("broker_positions",),
       "One line of the broker's statement has a market value 1% off quantity x close price.", False)
def broker_mv_mismatch(day_dir, rng, ctx):
    positions = ctx.read("broker_positions.csv")
    index = ctx.choose(list(positions.index), "broker position")
    value = parse_units(positions.at[index, "market_value"])
    error = max(10_000, round(abs(value) * 0.01 / 100) * 100)  # 1%, in cents, at least 1.00
    ctx.set_cell("broker_positions.csv", positions, index, "market_value", format_units(value + error),
                 ("account", "symbol"))
    ctx.write("broker_positions.csv", positions)
    return {"target": {"account": positions.at[index, "account"], "symbol": positions.at[index, "symbol"],
                       "market_value_error": money(error)}, **no_book_effect()}


@fault("broker_price_off", 10, ("broker_positions",),
       "The broker values one holding at a price 1% off the firm's EOD mark (market value consistent with it).", False)
def broker_price_off(day_dir, rng, ctx):
    positions = ctx.read("broker_positions.csv")
    open_rows = [i for i in positions.index if positions.at[i, "symbol"] in ctx.open_symbols]
    index = ctx.choose(open_rows or list(positions.index), "broker position")
    symbol = positions.at[index, "symbol"]
    tick = ctx.securities[symbol].tick
    close = parse_units(positions.at[index, "close_price"])
    price = max(close + tick, int(round(close * 1.01 / tick)) * tick)
    quantity = int(positions.at[index, "quantity"])
    keys = ("account", "symbol")
    ctx.set_cell("broker_positions.csv", positions, index, "close_price", format_units(price), keys)
    ctx.set_cell("broker_positions.csv", positions, index, "market_value", format_units(quantity * price), keys)
    ctx.write("broker_positions.csv", positions)
    return {"target": {"account": positions.at[index, "account"], "symbol": symbol, "firm_mark": money(close),
                       "broker_price": money(price), "broker_minus_firm_market_value": money(quantity * (price - close))},
            **no_book_effect()}
