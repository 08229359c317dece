"""The sample generator writes exactly the landing format, deterministically, with clean books."""

import datetime as dt
import filecmp
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from cei_assets.landing import ALL_DATASETS, QUOTES
from cei_assets.sample_data import FAULTS, generate_landing

START = dt.date(2026, 11, 23)  # spans US Thanksgiving (2026-11-26)
SMALL = dict(symbols=16, quotes_per_symbol=60, orders_per_day=25)


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "landing"
    summary = generate_landing(out, START, 6, seed=3, **SMALL)
    return out, summary


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_the_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path):
    a = generate_landing(tmp_path / "a", START, 2, seed=9, **SMALL).out
    b = generate_landing(tmp_path / "b", START, 2, seed=9, **SMALL).out
    c = generate_landing(tmp_path / "c", START, 2, seed=10, **SMALL).out
    files = sorted(p.relative_to(a) for p in a.rglob("*.csv"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.csv"))
    assert all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)
    assert not all(filecmp.cmp(a / f, c / f, shallow=False) for f in files)


def test_trading_dates_are_nyse_sessions_only(landing):
    _, summary = landing
    dates = [str(d) for d in summary.trading_dates]
    assert "2026-11-26" not in dates  # Thanksgiving
    assert dates[:4] == ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]


def test_every_file_has_exactly_the_spec_columns(landing):
    out, summary = landing
    day = out / str(summary.trading_dates[0])
    for dataset in ALL_DATASETS:
        if dataset is QUOTES:
            paths = sorted(day.glob("quotes_*.csv"))
            assert [p.name for p in paths] == ["quotes_primary.csv", "quotes_secondary.csv"]
        else:
            paths = [dataset.file_for(out, summary.trading_dates[0])]
        for path in paths:
            header = path.read_text().splitlines()[0].split(",")
            assert header == list(dataset.columns), path


def test_timestamps_are_iso_utc_with_milliseconds_and_quotes_are_ordered_per_symbol(landing):
    out, summary = landing
    for day in summary.trading_dates:
        for path in (out / str(day)).glob("quotes_*.csv"):
            quotes = read(path)
            assert quotes["ts"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").all()
            assert quotes["ts"].str.startswith(str(day)).all()
            for _, times in quotes.groupby("symbol")["ts"]:
                assert times.is_monotonic_increasing
            bid, ask = quotes["bid"].astype(float), quotes["ask"].astype(float)
            assert ((bid > 0) & (bid <= ask)).all()


def test_a_security_whose_exchange_is_closed_has_no_quotes_and_a_carried_mark(landing):
    out, summary = landing
    # 2026-11-23 is a Japanese holiday (Labour Thanksgiving Day): the Tokyo names are not quoted.
    quotes = read(out / "2026-11-23" / "quotes_primary.csv")
    securities = read(out / "reference" / "securities.csv")
    tokyo = set(securities.loc[securities["exchange"] == "XTKS", "symbol"])
    assert tokyo and not tokyo & set(quotes["symbol"])
    marks = read(out / "2026-11-23" / "eod_prices.csv").set_index("symbol")
    assert (marks.loc[sorted(tokyo), "source"] == "CARRIED").all()
    assert len(marks) == len(securities) and marks.index.is_unique


def _signed(frame):
    quantity = frame["quantity"].map(Decimal)
    return quantity.where(frame["side"] == "BUY", -quantity)


def test_positions_and_cash_roll_forward_exactly_to_the_brokers_statements(landing):
    out, summary = landing
    positions = {(r.account, r.symbol): Decimal(r.quantity) for r in read(out / "opening" / "positions.csv").itertuples()}
    cash = {(r.account, r.currency): Decimal(r.balance) for r in read(out / "opening" / "cash.csv").itertuples()}
    for day in summary.trading_dates:
        folder = out / str(day)
        actions = read(folder / "corporate_actions.csv")
        for action in actions.itertuples():
            if action.action == "CASH_DIVIDEND":
                for (account, symbol), quantity in positions.items():
                    if symbol == action.symbol:
                        key = (account, action.currency)
                        cash[key] = cash.get(key, Decimal(0)) + quantity * Decimal(action.amount)
        for action in actions.itertuples():
            if action.action == "SPLIT":
                for key in positions:
                    if key[1] == action.symbol:
                        positions[key] *= Decimal(action.ratio)
        fills = read(folder / "executions.csv")
        fills["signed"] = _signed(fills)
        for fill in fills.itertuples():
            positions[(fill.account, fill.symbol)] = positions.get((fill.account, fill.symbol), Decimal(0)) + fill.signed
            key = (fill.account, fill.currency)
            cash[key] = cash.get(key, Decimal(0)) - fill.signed * Decimal(fill.price) - Decimal(fill.fee)
        broker = {(r.account, r.symbol): Decimal(r.quantity) for r in read(folder / "broker_positions.csv").itertuples()}
        assert broker == {k: v for k, v in positions.items() if v != 0}, day
        broker_cash = {(r.account, r.currency): Decimal(r.balance) for r in read(folder / "broker_cash.csv").itertuples()}
        assert broker_cash == cash, day
        for line in read(folder / "broker_positions.csv").itertuples():
            assert Decimal(line.market_value) == Decimal(line.quantity) * Decimal(line.close_price)


def test_orders_fills_and_confirms_agree(landing):
    out, summary = landing
    for day in summary.trading_dates:
        folder = out / str(day)
        orders = read(folder / "orders.csv").set_index("order_id")
        fills = read(folder / "executions.csv")
        confirms = read(folder / "broker_trades.csv")
        assert fills["order_id"].isin(orders.index).all()
        filled = fills.assign(q=fills["quantity"].astype(int)).groupby("order_id")["q"].sum()
        assert (filled <= orders.loc[filled.index, "quantity"].astype(int)).all()
        for fill in fills.itertuples():
            order = orders.loc[fill.order_id]
            assert (fill.account, fill.symbol, fill.side) == (order.account, order.symbol, order.side)
            if order.order_type == "LIMIT":
                price, limit = Decimal(fill.price), Decimal(order.limit_price)
                assert price <= limit if fill.side == "BUY" else price >= limit
        assert confirms["exec_id"].is_unique and sorted(confirms["exec_id"]) == sorted(fills["exec_id"])
        merged = fills.merge(confirms, on="exec_id", suffixes=("", "_broker"))
        for column in ("account", "symbol", "side", "quantity", "price", "fee"):
            assert (merged[column] == merged[f"{column}_broker"]).all(), column
        assert (merged["received_ts"] < f"{day}T23:00:00.000Z").all()


def test_fx_cross_pairs_agree_with_their_usd_legs(landing):
    out, summary = landing
    rates = read(out / str(summary.trading_dates[-1]) / "fx_rates.csv").set_index("pair")["rate"].astype(float)
    assert {"EURUSD", "GBPUSD", "JPYUSD"} <= set(rates.index)
    assert rates["EURGBP"] == pytest.approx(rates["EURUSD"] / rates["GBPUSD"], rel=1e-9)


def test_a_month_holds_a_split_and_a_dividend_on_held_securities(landing):
    out, _ = landing
    manifest = json.loads((out / "_generator.json").read_text())
    kinds = {a["action"] for a in manifest["corporate_actions"]}
    assert kinds == {"SPLIT", "CASH_DIVIDEND"}


def test_a_non_generator_folder_is_never_overwritten(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        generate_landing(tmp_path, START, 1, **SMALL)


def test_an_unknown_fault_lists_the_catalogue():
    with pytest.raises(ValueError, match="duplicate_fill"):
        generate_landing(Path("/nonexistent/never-written"), START, 1, fault="no_such_fault")


def test_the_catalogue_covers_every_invariant_and_file_problems():
    assert {f.invariant for f in FAULTS.values()} == set(range(0, 11))


@pytest.fixture(scope="module")
def clean_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "landing"
    generate_landing(out, dt.date(2026, 10, 1), 3, seed=4, **SMALL)
    return out


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_changes_only_the_files_it_names_on_its_date(name, clean_small, tmp_path):
    fault = FAULTS[name]
    out = tmp_path / "landing"
    summary = generate_landing(out, dt.date(2026, 10, 1), 3, seed=4, fault=name, **SMALL)
    manifest = json.loads((out / "_generator.json").read_text())
    assert manifest["fault"]["name"] == name and manifest["fault"]["date"] == str(summary.trading_dates[-1])
    changed = set()
    for path in sorted(clean_small.rglob("*.csv")):
        relative = path.relative_to(clean_small)
        other = out / relative
        if not other.exists() or not filecmp.cmp(path, other, shallow=False):
            changed.add(relative)
    assert changed, f"{name} changed nothing"
    assert {p.parts[0] for p in changed} == {str(summary.trading_dates[-1])}
    stems = {"quotes" if p.stem.startswith("quotes_") else p.stem for p in changed}
    assert stems <= set(fault.datasets), f"{name} changed {stems}, declares {fault.datasets}"
