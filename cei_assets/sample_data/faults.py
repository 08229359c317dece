"""The fault catalogue: one narrow, named corruption per entry, covering every spec invariant.

Each fault edits the clean files of one trading date (the last generated date by default, so
the earlier dates stay clean history) and returns a precise description for the manifest:
files, row keys, old and new values, and where the fault moves the books by a computable
amount, that amount. ``blocking_expected`` says whether the books would be wrong (a check
must halt them) or only other consumers are concerned (a warning).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from cei_assets.sample_data.generator import SCALE, fmt_units


@dataclasses.dataclass
class FaultContext:
    out: Path
    date: dt.date
    dates: list[dt.date]
    rng: np.random.Generator
    simulation: object

    @property
    def day_dir(self) -> Path:
        return self.out / self.date.isoformat()

    def read(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.day_dir / name, dtype=str, keep_default_na=False)

    def write(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.day_dir / name, index=False, lineterminator="\n")

    def pick(self, frame: pd.DataFrame, mask=None) -> int:
        candidates = frame.index[mask] if mask is not None else frame.index
        if len(candidates) == 0:
            raise ValueError(f"fault cannot be applied on {self.date}: no suitable row")
        return int(candidates[int(self.rng.integers(len(candidates)))])


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    invariant: int  # 1-10 from the landing spec; 0 for file-level problems
    datasets: tuple[str, ...]
    summary: str
    blocking_expected: bool
    apply: Callable[[FaultContext], dict]


def _units(text: str) -> int:
    return int((Decimal(text) * SCALE).to_integral_value())


def _quote_symbols(ctx: FaultContext, vendor: str = "primary", count: int = 1) -> list[str]:
    quotes = ctx.read(f"quotes_{vendor}.csv")
    symbols = sorted(quotes["symbol"].unique())
    chosen = ctx.rng.choice(len(symbols), size=min(count, len(symbols)), replace=False)
    return [symbols[int(i)] for i in sorted(chosen)]


def _held(ctx: FaultContext, quoted: bool = True) -> tuple[str, str, int]:
    """An (account, symbol, quantity) held at the close of the fault date, quoted that day."""
    positions = ctx.read("broker_positions.csv")
    if quoted:
        quoted_symbols = set(ctx.read("quotes_primary.csv")["symbol"])
        positions = positions[positions["symbol"].isin(quoted_symbols)]
    fills = set(ctx.read("executions.csv")["symbol"])
    quiet = positions[~positions["symbol"].isin(fills)]  # no fills that day: a cleaner story
    frame = quiet if len(quiet) else positions
    row = frame.loc[ctx.pick(frame)]
    return row["account"], row["symbol"], int(row["quantity"])


# ----------------------------------------------------------------------------- file level

def _missing_file(ctx):
    (ctx.day_dir / "executions.csv").unlink()
    return {"file": "executions.csv", "change": "removed"}


def _malformed_value(ctx):
    frame = ctx.read("executions.csv")
    i = ctx.pick(frame)
    old = frame.at[i, "price"]
    frame.at[i, "price"] = old.replace(".", ".", 1) + ".4" if "." in old else old + ".3.4"
    ctx.write("executions.csv", frame)
    return {"file": "executions.csv", "column": "price", "line": i + 2, "exec_id": frame.at[i, "exec_id"],
            "old": old, "new": frame.at[i, "price"]}


def _missing_column(ctx):
    frame = ctx.read("broker_trades.csv").drop(columns=["fee"])
    ctx.write("broker_trades.csv", frame)
    return {"file": "broker_trades.csv", "column": "fee", "change": "column removed"}


def _unreadable_encoding(ctx):
    path = ctx.day_dir / "orders.csv"
    lines = path.read_bytes().split(b"\n")
    line = 1 + int(ctx.rng.integers(max(1, len(lines) - 2)))
    lines[line] = lines[line].replace(b",", b",\xff\xfe", 1)
    path.write_bytes(b"\n".join(lines))
    return {"file": "orders.csv", "line": line + 1, "change": "invalid UTF-8 bytes"}


# ----------------------------------------------------------------------------- quotes (1, 2)

def _edit_quotes(ctx, vendor, symbols, edit):
    name = f"quotes_{vendor}.csv"
    frame = ctx.read(name)
    mask = frame["symbol"].isin(symbols)
    frame = edit(frame, mask)
    ctx.write(name, frame)
    return int(mask.sum())


def _null_bid(ctx):
    symbols = _quote_symbols(ctx, count=2)
    rows = []

    def edit(frame, mask):
        for symbol in symbols:
            idx = frame.index[frame["symbol"] == symbol]
            take = idx[ctx.rng.random(len(idx)) < 0.15]
            frame.loc[take, "bid"] = ""
            rows.append(len(take))
        return frame

    _edit_quotes(ctx, "primary", symbols, edit)
    return {"file": "quotes_primary.csv", "symbols": symbols, "rows": rows, "column": "bid", "change": "emptied"}


def _bad_prices(field, new_value, share=0.05):
    def apply(ctx):
        (symbol,) = _quote_symbols(ctx)
        changed = []

        def edit(frame, mask):
            idx = frame.index[mask]
            take = idx[: max(1, int(len(idx) * share))]
            for i in take:
                frame.at[i, field] = new_value(frame.loc[i])
            changed.append(len(take))
            return frame

        _edit_quotes(ctx, "primary", [symbol], edit)
        return {"file": "quotes_primary.csv", "symbol": symbol, "column": field, "rows": changed[0]}
    return apply


def _crossed(row):
    return f"{float(row['ask']) * 1.01:.4f}"


def _quote_ts_outside_date(ctx):
    (symbol,) = _quote_symbols(ctx)

    def edit(frame, mask):
        last = frame.index[mask][-1]
        frame.at[last, "ts"] = (ctx.date + dt.timedelta(days=1)).isoformat() + "T00:00:05.000Z"
        return frame

    _edit_quotes(ctx, "primary", [symbol], edit)
    return {"file": "quotes_primary.csv", "symbol": symbol, "column": "ts", "rows": 1}


def _quote_out_of_order(ctx):
    (symbol,) = _quote_symbols(ctx)

    def edit(frame, mask):
        idx = frame.index[mask]
        i, j = idx[len(idx) // 3], idx[2 * len(idx) // 3]
        frame.at[i, "ts"], frame.at[j, "ts"] = frame.at[j, "ts"], frame.at[i, "ts"]
        return frame

    _edit_quotes(ctx, "primary", [symbol], edit)
    return {"file": "quotes_primary.csv", "symbol": symbol, "column": "ts", "change": "two timestamps swapped"}


def _missing_symbol_quotes(ctx):
    (symbol,) = _quote_symbols(ctx)
    for vendor in ctx.simulation.vendors:
        name = f"quotes_{vendor}.csv"
        frame = ctx.read(name)
        ctx.write(name, frame[frame["symbol"] != symbol])
    return {"files": [f"quotes_{v}.csv" for v in ctx.simulation.vendors], "symbol": symbol, "change": "all quotes removed"}


def _stale_feed(ctx):
    (symbol,) = _quote_symbols(ctx)
    removed = []

    def edit(frame, mask):
        idx = frame.index[mask]
        drop = idx[int(len(idx) * 0.2): int(len(idx) * 0.85)]
        removed.append(len(drop))
        return frame.drop(index=drop)

    _edit_quotes(ctx, "primary", [symbol], edit)
    return {"file": "quotes_primary.csv", "symbol": symbol, "rows_removed": removed[0],
            "change": "silent for 65% of its session"}


def _decimal_shift_quotes(ctx):
    (symbol,) = _quote_symbols(ctx)

    def edit(frame, mask):
        idx = frame.index[mask]
        for i in idx[len(idx) // 2:]:
            frame.at[i, "bid"] = f"{float(frame.at[i, 'bid']) * 10:.4f}"
            frame.at[i, "ask"] = f"{float(frame.at[i, 'ask']) * 10:.4f}"
        return frame

    _edit_quotes(ctx, "primary", [symbol], edit)
    return {"file": "quotes_primary.csv", "symbol": symbol, "change": "bid and ask x10 for the second half of the day"}


def _copied_price(ctx):
    victim, source = _quote_symbols(ctx, count=2)
    frame = ctx.read("quotes_primary.csv")
    source_rows = frame[frame["symbol"] == source].reset_index(drop=True)
    idx = frame.index[frame["symbol"] == victim]
    for k, i in enumerate(idx):
        row = source_rows.loc[min(k, len(source_rows) - 1)]
        frame.at[i, "bid"], frame.at[i, "ask"] = row["bid"], row["ask"]
    ctx.write("quotes_primary.csv", frame)
    return {"file": "quotes_primary.csv", "symbol": victim, "copied_from": source}


def _vendor_disagreement(ctx):
    if "secondary" not in ctx.simulation.vendors:
        raise ValueError("vendor_disagreement needs a secondary vendor")
    (symbol,) = _quote_symbols(ctx, vendor="secondary")

    def edit(frame, mask):
        for i in frame.index[mask]:
            frame.at[i, "bid"] = f"{float(frame.at[i, 'bid']) * 1.03:.4f}"
            frame.at[i, "ask"] = f"{float(frame.at[i, 'ask']) * 1.03:.4f}"
        return frame

    _edit_quotes(ctx, "secondary", [symbol], edit)
    return {"file": "quotes_secondary.csv", "symbol": symbol, "change": "mid 3% above the primary vendor all day"}


# ----------------------------------------------------------------------------- marks (3)

def _edit_mark(ctx, transform, held=True):
    account, symbol, quantity = _held(ctx) if held else (None, _quote_symbols(ctx)[0], 0)
    frame = ctx.read("eod_prices.csv")
    i = ctx.pick(frame, frame["symbol"] == symbol)
    old = frame.at[i, "close"]
    frame = transform(frame, i)
    ctx.write("eod_prices.csv", frame)
    return symbol, old, account, quantity


def _eod_mark_missing(ctx):
    symbol, old, _, _ = _edit_mark(ctx, lambda f, i: f.drop(index=i))
    return {"file": "eod_prices.csv", "symbol": symbol, "old": old, "change": "mark removed"}


def _eod_mark_duplicate(ctx):
    def dup(frame, i):
        extra = frame.loc[[i]].copy()
        extra["close"] = fmt_units(int(_units(frame.at[i, "close"]) * 1.02))
        return pd.concat([frame, extra], ignore_index=True)
    symbol, old, _, _ = _edit_mark(ctx, dup)
    return {"file": "eod_prices.csv", "symbol": symbol, "old": old, "change": "a second, 2% different mark"}


def _eod_mark_zero(ctx):
    def zero(frame, i):
        frame.at[i, "close"] = "0"
        return frame
    symbol, old, _, _ = _edit_mark(ctx, zero)
    return {"file": "eod_prices.csv", "symbol": symbol, "old": old, "new": "0"}


def _eod_mark_decimal_shift(ctx):
    def shift(frame, i):
        frame.at[i, "close"] = fmt_units(_units(frame.at[i, "close"]) * 100)
        return frame
    symbol, old, account, quantity = _edit_mark(ctx, shift)
    return {"file": "eod_prices.csv", "symbol": symbol, "old": old, "new": fmt_units(_units(old) * 100),
            "held_by": account, "change": "mark x100; the broker keeps the right price"}


def _price_spike_unexplained(ctx):
    account, symbol, quantity = _held(ctx)
    factor = 1.45
    marks = ctx.read("eod_prices.csv")
    i = ctx.pick(marks, marks["symbol"] == symbol)
    old = marks.at[i, "close"]
    new_units = int(round(_units(old) * factor))
    marks.at[i, "close"] = fmt_units(new_units)
    ctx.write("eod_prices.csv", marks)

    def edit(frame, mask):
        for j in frame.index[mask][-max(1, int(mask.sum()) // 10):]:
            frame.at[j, "bid"] = f"{float(frame.at[j, 'bid']) * factor:.4f}"
            frame.at[j, "ask"] = f"{float(frame.at[j, 'ask']) * factor:.4f}"
        return frame

    _edit_quotes(ctx, "primary", [symbol], edit)
    return {"files": ["eod_prices.csv", "quotes_primary.csv"], "symbol": symbol, "old": old,
            "new": fmt_units(new_units), "change": "+45% into the close with no corporate action"}


# ----------------------------------------------------------------------------- FX (4, 9)

def _edit_fx(ctx, pair, transform):
    frame = ctx.read("fx_rates.csv")
    i = ctx.pick(frame, frame["pair"] == pair)
    old = frame.at[i, "rate"]
    frame = transform(frame, i)
    ctx.write("fx_rates.csv", frame)
    return old


def _fx_negative_rate(ctx):
    def negate(frame, i):
        frame.at[i, "rate"] = "-" + frame.at[i, "rate"]
        return frame
    old = _edit_fx(ctx, "GBPUSD", negate)
    return {"file": "fx_rates.csv", "pair": "GBPUSD", "old": old, "new": "-" + old}


def _fx_cross_inconsistent(ctx):
    def skew(frame, i):
        frame.at[i, "rate"] = f"{float(frame.at[i, 'rate']) * 1.02:.10f}"
        return frame
    old = _edit_fx(ctx, "EURGBP", skew)
    return {"file": "fx_rates.csv", "pair": "EURGBP", "old": old, "change": "2% off its USD legs"}


def _fx_missing_leg(ctx):
    old = _edit_fx(ctx, "GBPUSD", lambda f, i: f.drop(index=i))
    return {"file": "fx_rates.csv", "pair": "GBPUSD", "old": old, "change": "row removed"}


def _fx_rate_shift(ctx):
    def shift(frame, i):
        frame.at[i, "rate"] = f"{float(frame.at[i, 'rate']) * 1.10:.10f}"
        return frame
    old = _edit_fx(ctx, "EURUSD", shift)
    return {"file": "fx_rates.csv", "pair": "EURUSD", "old": old, "new": f"{float(old) * 1.10:.10f}",
            "change": "EURUSD x1.10; broker values in EUR are unaffected, base-currency P&L moves"}


# ----------------------------------------------------------------------------- orders and fills (5, 6)

def _broker_books(ctx, account, symbol, currency, signed_quantity, cash_units):
    """Move the broker's statements as if it booked an extra trade."""
    positions = ctx.read("broker_positions.csv")
    mask = (positions["account"] == account) & (positions["symbol"] == symbol)
    close = _units(ctx.read("eod_prices.csv").set_index("symbol").loc[symbol, "close"])
    if mask.any():
        i = positions.index[mask][0]
        quantity = int(positions.at[i, "quantity"]) + signed_quantity
        positions.at[i, "quantity"] = str(quantity)
        positions.at[i, "market_value"] = fmt_units(quantity * close)
    else:
        positions = pd.concat([positions, pd.DataFrame([{
            "account": account, "symbol": symbol, "quantity": str(signed_quantity), "close_price": fmt_units(close),
            "market_value": fmt_units(signed_quantity * close), "currency": currency}])], ignore_index=True)
    positions = positions[positions["quantity"].astype(int) != 0]
    ctx.write("broker_positions.csv", positions)
    cash = ctx.read("broker_cash.csv")
    j = ctx.pick(cash, (cash["account"] == account) & (cash["currency"] == currency))
    cash.at[j, "balance"] = fmt_units(_units(cash.at[j, "balance"]) + cash_units)
    ctx.write("broker_cash.csv", cash)


def _extra_fill(ctx, order_id=None, mutate=None):
    """Append a fill (and its confirm, booked by the broker) copied from an existing one."""
    executions = ctx.read("executions.csv")
    i = ctx.pick(executions)
    fill = executions.loc[i].copy()
    fill["exec_id"] = fill["exec_id"] + "-X"
    if order_id is not None:
        fill["order_id"] = order_id
    if mutate:
        fill = mutate(fill)
    ctx.write("executions.csv", pd.concat([executions, fill.to_frame().T], ignore_index=True))
    confirms = ctx.read("broker_trades.csv")
    confirm = confirms[confirms["exec_id"] == executions.at[i, "exec_id"]].iloc[0].copy()
    for column in ("exec_id", "account", "symbol", "side", "quantity", "price", "fee"):
        confirm[column] = fill[column]
    confirm["broker_ref"] = confirm["broker_ref"] + "-X"
    ctx.write("broker_trades.csv", pd.concat([confirms, confirm.to_frame().T], ignore_index=True))
    signed = int(fill["quantity"]) * (1 if fill["side"] == "BUY" else -1)
    _broker_books(ctx, fill["account"], fill["symbol"], fill["currency"], signed,
                  -signed * _units(fill["price"]) - _units(fill["fee"]))
    return fill


def _orphan_fill(ctx):
    fill = _extra_fill(ctx, order_id=f"ORD-UNKNOWN-{ctx.date:%Y%m%d}")
    return {"files": ["executions.csv", "broker_trades.csv", "broker_positions.csv", "broker_cash.csv"],
            "exec_id": fill["exec_id"], "order_id": fill["order_id"], "change": "fill of an order that does not exist"}


def _overfill(ctx):
    orders = ctx.read("orders.csv")
    executions = ctx.read("executions.csv")
    filled = executions.assign(q=executions["quantity"].astype(int)).groupby("order_id")["q"].sum()
    full = [o for o, q in filled.items() if q == int(orders.set_index("order_id").loc[o, "quantity"])]
    if not full:
        raise ValueError(f"overfill cannot be applied on {ctx.date}: no completely filled order")
    order_id = sorted(full)[int(ctx.rng.integers(len(full)))]
    victim = executions.index[executions["order_id"] == order_id][0]

    def same_order(fill):
        for column in executions.columns:
            fill[column] = executions.at[victim, column] if column != "exec_id" else fill["exec_id"]
        return fill

    fill = _extra_fill(ctx, order_id=order_id, mutate=same_order)
    return {"files": ["executions.csv", "broker_trades.csv", "broker_positions.csv", "broker_cash.csv"],
            "order_id": order_id, "exec_id": fill["exec_id"], "extra_quantity": int(fill["quantity"])}


def _fill_field_mismatch(column, replace):
    def apply(ctx):
        executions = ctx.read("executions.csv")
        i = ctx.pick(executions)
        old = executions.at[i, column]
        new = replace(ctx, old)
        executions.at[i, column] = new
        ctx.write("executions.csv", executions)
        confirms = ctx.read("broker_trades.csv")
        j = confirms.index[confirms["exec_id"] == executions.at[i, "exec_id"]][0]
        confirms.at[j, column] = new  # the broker confirms the fill as executed
        ctx.write("broker_trades.csv", confirms)
        return {"files": ["executions.csv", "broker_trades.csv"], "exec_id": executions.at[i, "exec_id"],
                "column": column, "old": old, "new": new, "change": f"{column} differs from its order"}
    return apply


def _other_account(ctx, old):
    from cei_assets.sample_data.generator import ACCOUNTS

    others = [a[0] for a in ACCOUNTS if a[0] != old]
    return others[int(ctx.rng.integers(len(others)))]


def _limit_breach(ctx):
    orders = ctx.read("orders.csv")
    executions = ctx.read("executions.csv")
    limits = orders[(orders["order_type"] == "LIMIT") & (orders["side"] == "BUY")]
    candidates = executions.index[executions["order_id"].isin(limits["order_id"])]
    if len(candidates) == 0:
        raise ValueError(f"limit_breach cannot be applied on {ctx.date}: no filled LIMIT buy")
    i = int(candidates[int(ctx.rng.integers(len(candidates)))])
    limit = _units(limits.set_index("order_id").loc[executions.at[i, "order_id"], "limit_price"])
    old = executions.at[i, "price"]
    new = fmt_units(int(limit * 1.01))
    executions.at[i, "price"] = new
    ctx.write("executions.csv", executions)
    confirms = ctx.read("broker_trades.csv")
    j = confirms.index[confirms["exec_id"] == executions.at[i, "exec_id"]][0]
    confirms.at[j, "price"] = new
    ctx.write("broker_trades.csv", confirms)
    quantity = int(executions.at[i, "quantity"])
    positions_cash = -quantity * (_units(new) - _units(old))
    _broker_books(ctx, executions.at[i, "account"], executions.at[i, "symbol"], executions.at[i, "currency"], 0,
                  positions_cash)
    return {"files": ["executions.csv", "broker_trades.csv", "broker_cash.csv"], "exec_id": executions.at[i, "exec_id"],
            "limit": fmt_units(limit), "old": old, "new": new}


def _edit_confirm(column, transform):
    def apply(ctx):
        confirms = ctx.read("broker_trades.csv")
        i = ctx.pick(confirms)
        old = confirms.at[i, column]
        confirms.at[i, column] = transform(old)
        ctx.write("broker_trades.csv", confirms)
        return {"file": "broker_trades.csv", "exec_id": confirms.at[i, "exec_id"], "column": column,
                "old": old, "new": confirms.at[i, column]}
    return apply


def _missing_confirm(ctx):
    confirms = ctx.read("broker_trades.csv")
    i = ctx.pick(confirms)
    exec_id = confirms.at[i, "exec_id"]
    ctx.write("broker_trades.csv", confirms.drop(index=i))
    return {"file": "broker_trades.csv", "exec_id": exec_id, "change": "confirm removed"}


def _late_confirm(ctx):
    late = dt.datetime.combine(ctx.date, dt.time(23, 42, 7)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return _edit_confirm("received_ts", lambda old: late)(ctx)


def _duplicate_fill(ctx):
    executions = ctx.read("executions.csv")
    i = ctx.pick(executions)
    duplicate = executions.loc[i].copy()
    duplicate["exec_id"] = duplicate["exec_id"] + "-DUP"
    ctx.write("executions.csv", pd.concat([executions, duplicate.to_frame().T], ignore_index=True))
    quantity = int(duplicate["quantity"])
    signed = quantity if duplicate["side"] == "BUY" else -quantity
    cash = -signed * _units(duplicate["price"]) - _units(duplicate["fee"])
    return {"file": "executions.csv", "exec_id": duplicate["exec_id"], "duplicate_of": executions.at[i, "exec_id"],
            "expected_position_diff": {"account": duplicate["account"], "symbol": duplicate["symbol"],
                                       "quantity": signed},
            "expected_cash_diff": {"account": duplicate["account"], "currency": duplicate["currency"],
                                   "amount": fmt_units(cash)}}


def _orphan_confirm(ctx):
    confirms = ctx.read("broker_trades.csv")
    i = ctx.pick(confirms)
    confirm = confirms.loc[i].copy()
    confirm["exec_id"] = f"EXE-UNKNOWN-{ctx.date:%Y%m%d}"
    confirm["broker_ref"] = confirm["broker_ref"] + "-ORPHAN"
    ctx.write("broker_trades.csv", pd.concat([confirms, confirm.to_frame().T], ignore_index=True))
    signed = int(confirm["quantity"]) * (1 if confirm["side"] == "BUY" else -1)
    currency = ctx.simulation.by_symbol[confirm["symbol"]].currency
    _broker_books(ctx, confirm["account"], confirm["symbol"], currency, signed,
                  -signed * _units(confirm["price"]) - _units(confirm["fee"]))
    return {"files": ["broker_trades.csv", "broker_positions.csv", "broker_cash.csv"],
            "broker_ref": confirm["broker_ref"], "exec_id": confirm["exec_id"]}


# ----------------------------------------------------------------------------- statements (7, 8, 10)

def _position_off_at_broker(ctx):
    account, symbol, quantity = _held(ctx)
    positions = ctx.read("broker_positions.csv")
    i = ctx.pick(positions, (positions["account"] == account) & (positions["symbol"] == symbol))
    delta = 100 * ctx.simulation.by_symbol[symbol].lot_size
    positions.at[i, "quantity"] = str(quantity + delta)
    positions.at[i, "market_value"] = fmt_units((quantity + delta) * _units(positions.at[i, "close_price"]))
    ctx.write("broker_positions.csv", positions)
    return {"file": "broker_positions.csv", "account": account, "symbol": symbol, "old": quantity,
            "new": quantity + delta, "expected_position_diff": {"account": account, "symbol": symbol, "quantity": -delta}}


def _unrecorded_split(ctx):
    account, symbol, _ = _held(ctx)
    ratio = 2
    for vendor in ctx.simulation.vendors:
        def halve(frame, mask):
            for i in frame.index[mask]:
                frame.at[i, "bid"] = f"{float(frame.at[i, 'bid']) / ratio:.4f}"
                frame.at[i, "ask"] = f"{float(frame.at[i, 'ask']) / ratio:.4f}"
            return frame
        _edit_quotes(ctx, vendor, [symbol], halve)
    marks = ctx.read("eod_prices.csv")
    m = ctx.pick(marks, marks["symbol"] == symbol)
    old_mark = marks.at[m, "close"]
    new_mark = int(round(_units(old_mark) / ratio))
    marks.at[m, "close"] = fmt_units(new_mark)
    ctx.write("eod_prices.csv", marks)
    positions = ctx.read("broker_positions.csv")
    holders = {}
    for i in positions.index[positions["symbol"] == symbol]:
        quantity = int(positions.at[i, "quantity"])
        holders[positions.at[i, "account"]] = quantity
        positions.at[i, "quantity"] = str(quantity * ratio)
        positions.at[i, "close_price"] = fmt_units(new_mark)
        positions.at[i, "market_value"] = fmt_units(quantity * ratio * new_mark)
    ctx.write("broker_positions.csv", positions)
    return {"files": [f"quotes_{v}.csv" for v in ctx.simulation.vendors] + ["eod_prices.csv", "broker_positions.csv"],
            "symbol": symbol, "ratio": ratio, "old_mark": old_mark, "new_mark": fmt_units(new_mark),
            "holders": holders, "change": "a 2-for-1 split everywhere but corporate_actions.csv"}


def _cash_off_at_broker(ctx):
    cash = ctx.read("broker_cash.csv")
    i = ctx.pick(cash)
    old = cash.at[i, "balance"]
    cash.at[i, "balance"] = fmt_units(_units(old) + 1234_5600)
    ctx.write("broker_cash.csv", cash)
    return {"file": "broker_cash.csv", "account": cash.at[i, "account"], "currency": cash.at[i, "currency"],
            "old": old, "new": cash.at[i, "balance"],
            "expected_cash_diff": {"account": cash.at[i, "account"], "currency": cash.at[i, "currency"],
                                   "amount": "-1234.56"}}


def _unrecorded_dividend(ctx):
    account, symbol, quantity = _held(ctx)
    security = ctx.simulation.by_symbol[symbol]
    amount = 2500  # 0.25 per share
    cash = ctx.read("broker_cash.csv")
    i = ctx.pick(cash, (cash["account"] == account) & (cash["currency"] == security.currency))
    old = cash.at[i, "balance"]
    cash.at[i, "balance"] = fmt_units(_units(old) + quantity * amount)
    ctx.write("broker_cash.csv", cash)
    return {"file": "broker_cash.csv", "account": account, "symbol": symbol, "amount_per_share": fmt_units(amount),
            "credited": fmt_units(quantity * amount), "currency": security.currency}


def _broker_mv_mismatch(ctx):
    positions = ctx.read("broker_positions.csv")
    i = ctx.pick(positions)
    old = positions.at[i, "market_value"]
    positions.at[i, "market_value"] = fmt_units(_units(old) + 5_000_000)
    ctx.write("broker_positions.csv", positions)
    return {"file": "broker_positions.csv", "account": positions.at[i, "account"], "symbol": positions.at[i, "symbol"],
            "old": old, "new": positions.at[i, "market_value"], "change": "market_value + 500 with quantity and price kept"}


def _broker_price_off(ctx):
    positions = ctx.read("broker_positions.csv")
    i = ctx.pick(positions)
    old = positions.at[i, "close_price"]
    new = int(round(_units(old) * 1.01))
    positions.at[i, "close_price"] = fmt_units(new)
    positions.at[i, "market_value"] = fmt_units(int(positions.at[i, "quantity"]) * new)
    ctx.write("broker_positions.csv", positions)
    return {"file": "broker_positions.csv", "account": positions.at[i, "account"], "symbol": positions.at[i, "symbol"],
            "old": old, "new": fmt_units(new)}


def _fault(name, invariant, datasets, summary, blocking, apply) -> Fault:
    return Fault(name, invariant, tuple(datasets), summary, blocking, apply)


_CATALOGUE = [
    _fault("missing_file", 0, ["executions"], "executions.csv is missing from the date folder", True, _missing_file),
    _fault("malformed_value", 0, ["executions"], "a fill's price is not a number (12.3.4)", True, _malformed_value),
    _fault("missing_column", 0, ["broker_trades"], "broker_trades.csv lacks its fee column", True, _missing_column),
    _fault("unreadable_encoding", 0, ["orders"], "orders.csv holds bytes that are not UTF-8", True, _unreadable_encoding),
    _fault("null_bid", 1, ["quotes"], "about 15% of two symbols' primary quotes have no bid", False, _null_bid),
    _fault("crossed_quote", 1, ["quotes"], "some primary quotes of a symbol have bid above ask", False,
           _bad_prices("bid", _crossed)),
    _fault("zero_price", 1, ["quotes"], "some primary quotes of a symbol have a zero bid", False,
           _bad_prices("bid", lambda row: "0.0000")),
    _fault("negative_price", 1, ["quotes"], "some primary quotes of a symbol have a negative bid", False,
           _bad_prices("bid", lambda row: f"-{row['bid']}")),
    _fault("quote_ts_outside_date", 1, ["quotes"], "a quote is stamped on the next UTC date", False, _quote_ts_outside_date),
    _fault("quote_out_of_order", 1, ["quotes"], "two quotes of a symbol are out of time order", False, _quote_out_of_order),
    _fault("missing_symbol_quotes", 1, ["quotes"], "a security whose exchange is open has no quotes", False,
           _missing_symbol_quotes),
    _fault("stale_feed", 1, ["quotes"], "a symbol is silent for 65% of its session at the primary vendor", False,
           _stale_feed),
    _fault("decimal_shift_quotes", 1, ["quotes"], "a symbol's primary quotes are x10 for half the day", False,
           _decimal_shift_quotes),
    _fault("copied_price", 1, ["quotes"], "a symbol's primary quotes carry another symbol's prices", False, _copied_price),
    _fault("vendor_disagreement", 2, ["quotes"], "the secondary vendor's mid is 3% off for one symbol", False,
           _vendor_disagreement),
    _fault("eod_mark_missing", 3, ["eod_prices"], "a security has no EOD mark", True, _eod_mark_missing),
    _fault("eod_mark_duplicate", 3, ["eod_prices"], "a security has two different EOD marks", True, _eod_mark_duplicate),
    _fault("eod_mark_zero", 3, ["eod_prices"], "a held security's EOD mark is zero", True, _eod_mark_zero),
    _fault("eod_mark_decimal_shift", 3, ["eod_prices"], "a held security's EOD mark is 100 times too large", True,
           _eod_mark_decimal_shift),
    _fault("price_spike_unexplained", 3, ["eod_prices", "quotes"], "a held security closes 45% up with no corporate action",
           False, _price_spike_unexplained),
    _fault("fx_negative_rate", 4, ["fx_rates"], "GBPUSD is negative", True, _fx_negative_rate),
    _fault("fx_cross_inconsistent", 4, ["fx_rates"], "EURGBP is 2% off EURUSD/GBPUSD", True, _fx_cross_inconsistent),
    _fault("fx_missing_leg", 4, ["fx_rates"], "the GBPUSD rate is missing", True, _fx_missing_leg),
    _fault("orphan_fill", 5, ["executions", "broker_trades", "broker_positions", "broker_cash"],
           "a fill refers to an order that does not exist", True, _orphan_fill),
    _fault("overfill", 5, ["executions", "broker_trades", "broker_positions", "broker_cash"],
           "an order's fills exceed its quantity", True, _overfill),
    _fault("fill_side_mismatch", 5, ["executions", "broker_trades"], "a fill's side differs from its order's", True,
           _fill_field_mismatch("side", lambda ctx, old: "SELL" if old == "BUY" else "BUY")),
    _fault("fill_account_mismatch", 5, ["executions", "broker_trades"], "a fill's account differs from its order's",
           True, _fill_field_mismatch("account", _other_account)),
    _fault("limit_breach", 5, ["executions", "broker_trades", "broker_cash"], "a LIMIT buy filled above its limit", True,
           _limit_breach),
    _fault("missing_confirm", 6, ["broker_trades"], "a fill has no broker confirm", True, _missing_confirm),
    _fault("late_confirm", 6, ["broker_trades"], "a confirm arrived after the 23:00 UTC cut-off, otherwise matching",
           False, _late_confirm),
    _fault("confirm_price_off", 6, ["broker_trades"], "a confirm's price is a few cents off the fill", True,
           _edit_confirm("price", lambda old: fmt_units(_units(old) + 300))),
    _fault("confirm_quantity_off", 6, ["broker_trades"], "a confirm's quantity differs from the fill", True,
           _edit_confirm("quantity", lambda old: str(int(old) + 1))),
    _fault("confirm_fee_off", 6, ["broker_trades"], "a confirm's fee differs from the fill", True,
           _edit_confirm("fee", lambda old: fmt_units(_units(old) + 2500))),
    _fault("duplicate_fill", 6, ["executions"], "the firm recorded one fill twice under a new exec_id", True,
           _duplicate_fill),
    _fault("orphan_confirm", 6, ["broker_trades", "broker_positions", "broker_cash"],
           "the broker confirmed and booked a trade the firm has no fill for", True, _orphan_confirm),
    _fault("position_off_at_broker", 7, ["broker_positions"], "the broker's quantity for one holding is off by 100",
           True, _position_off_at_broker),
    _fault("unrecorded_split", 7, ["quotes", "eod_prices", "broker_positions"],
           "a 2-for-1 split shows in prices and the broker's positions but not in corporate_actions.csv", True,
           _unrecorded_split),
    _fault("cash_off_at_broker", 8, ["broker_cash"], "one broker cash balance is 1,234.56 higher", True,
           _cash_off_at_broker),
    _fault("unrecorded_dividend", 8, ["broker_cash"], "the broker credited a dividend not in corporate_actions.csv",
           True, _unrecorded_dividend),
    _fault("fx_rate_shift", 9, ["fx_rates"], "EURUSD is 10% too high: base-currency values and P&L move", True,
           _fx_rate_shift),
    _fault("broker_mv_mismatch", 10, ["broker_positions"], "a broker line's market value is not quantity x price",
           False, _broker_mv_mismatch),
    _fault("broker_price_off", 10, ["broker_positions"], "the broker's price for one holding is 1% off the firm's mark",
           False, _broker_price_off),
]

FAULTS: dict[str, Fault] = {fault.name: fault for fault in _CATALOGUE}
