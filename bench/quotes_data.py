"""A landing day of N quotes for benchmarks: spec format, realistic, fast, cached.

``quotes_day(10_000_000)`` returns a landing root holding ``reference/securities.csv`` and one
trading date with ``quotes_primary.csv`` and ``quotes_secondary.csv`` (half the rows each), in
exactly the format of ``shared/spec/landing-format.md``: ``ts, symbol, bid, ask, bid_size,
ask_size``, ISO 8601 UTC timestamps with a ``Z``, prices with two decimals.

The market: ``symbols`` US securities (XNYS/XNAS, USD) quoted through the NYSE session of
2026-01-15 (14:30-21:00 UTC). Each symbol follows one random walk (a per-second grid of
log-returns); both vendors read that walk, so their mids agree within a fraction of a basis
point, and each vendor quotes every symbol at evenly spread, jittered times, so no symbol is
silent for long. Rows are written in arrival order (by timestamp across symbols), so the
timestamps are non-decreasing per symbol and vendor.

Planted faults, on distinct rows and at fixed rates, so that every engine under test must find
something (the counts are in the manifest): null bids (0.1%), crossed quotes, zero bids, locked
quotes, timestamps stamped on the next day and timestamps that go back before the symbol's
previous quote. A faulty row is never the first or the last of its symbol and vendor.

Everything is vectorised numpy and the CSV is formatted by DuckDB's ``COPY``: 10M rows take
about 15 s on two cores. A generated day is kept under the cache folder (``$CEI_BENCH_DATA``,
default ``.cei/bench/data`` in the repository) and reused while its manifest matches.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

GENERATOR_VERSION = 2
BUSINESS_DATE = dt.date(2026, 1, 15)  # a Thursday, a full NYSE session
SESSION_OPEN_UTC = dt.time(14, 30)
SESSION_CLOSE_UTC = dt.time(21, 0)
VENDORS = ("primary", "secondary")
DEFAULT_SYMBOLS = 500
DEFAULT_SEED = 20260115
HEADER = ["ts", "symbol", "bid", "ask", "bid_size", "ask_size"]

# Share of each vendor's rows that carry the fault.
FAULT_RATES: dict[str, float] = {
    "null_bid": 1e-3,  # bid left empty
    "crossed": 1e-4,  # bid and ask swapped: bid above ask
    "zero_bid": 5e-5,  # bid of 0.00: outside any positive price range
    "locked": 5e-5,  # ask equal to bid
    "next_day": 2e-5,  # stamped 24 h late: outside the trading date (and ahead of the next quote)
    "backwards": 5e-5,  # stamped 1 s before the symbol's previous quote from the same vendor
}

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    return Path(os.environ.get("CEI_BENCH_DATA") or REPO_ROOT / ".cei" / "bench" / "data")


@dataclasses.dataclass
class QuotesDay:
    landing_root: Path
    business_date: dt.date
    rows: int
    rows_by_vendor: dict[str, int]
    symbols: int
    planted: dict[str, int]  # fault -> rows, over both vendors
    files: list[Path]
    bytes: int
    generated_seconds: float
    reused: bool = False

    @property
    def day_dir(self) -> Path:
        return self.landing_root / self.business_date.isoformat()

    @property
    def securities_file(self) -> Path:
        return self.landing_root / "reference" / "securities.csv"


def _manifest_key(rows: int, seed: int, symbols: int) -> dict:
    return {
        "version": GENERATOR_VERSION, "rows": rows, "seed": seed, "symbols": symbols,
        "business_date": BUSINESS_DATE.isoformat(), "vendors": list(VENDORS), "fault_rates": FAULT_RATES,
    }


def quotes_day(rows: int, *, cache_dir: Path | None = None, seed: int = DEFAULT_SEED,
               symbols: int = DEFAULT_SYMBOLS) -> QuotesDay:
    """The landing root for ``rows`` quotes, generated on first use and reused afterwards."""
    if rows < 2 * symbols * 4:
        raise ValueError(f"{rows:,} rows is too few for {symbols} symbols and {len(VENDORS)} vendors "
                         f"(at least {2 * symbols * 4:,}: four quotes per symbol and vendor)")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = cache_dir / f"quotes-{rows}-{symbols}sym-s{seed}-v{GENERATOR_VERSION}"
    manifest_path = root / "manifest.json"
    key = _manifest_key(rows, seed, symbols)
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        files = [root / f for f in manifest["files"]]
        if manifest.get("key") == key and all(f.is_file() for f in files):
            return _from_manifest(root, manifest, reused=True)
    building = cache_dir / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    started = time.perf_counter()
    manifest = _generate(building, rows, seed, symbols)
    manifest["key"] = key
    manifest["generated_seconds"] = round(time.perf_counter() - started, 3)
    (building / "manifest.json").write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    return _from_manifest(root, manifest, reused=False)


def _from_manifest(root: Path, manifest: dict, reused: bool) -> QuotesDay:
    return QuotesDay(
        landing_root=root, business_date=dt.date.fromisoformat(manifest["key"]["business_date"]),
        rows=manifest["rows"], rows_by_vendor=manifest["rows_by_vendor"], symbols=manifest["key"]["symbols"],
        planted=manifest["planted"], files=[root / f for f in manifest["files"]], bytes=manifest["bytes"],
        generated_seconds=manifest["generated_seconds"], reused=reused,
    )


def symbol_names(count: int) -> list[str]:
    """Deterministic four-letter tickers: BAAA, BAAB, ... (26**3 per leading letter)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    names = []
    for i in range(count):
        lead = letters[(1 + i // 26**3) % 26]
        rest = i % 26**3
        names.append(lead + letters[rest // 676] + letters[(rest // 26) % 26] + letters[rest % 26])
    return names


def _ms(day: dt.date, moment: dt.time) -> int:
    return int(dt.datetime.combine(day, moment, tzinfo=dt.timezone.utc).timestamp() * 1000)


def _generate(out: Path, rows: int, seed: int, n_symbols: int) -> dict:
    rng = np.random.default_rng(seed)
    names = symbol_names(n_symbols)
    (out / "reference").mkdir(parents=True)
    day_dir = out / BUSINESS_DATE.isoformat()
    day_dir.mkdir()

    # Securities master: every quoted symbol, half on each US exchange.
    with open(out / "reference" / "securities.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write("symbol,currency,exchange,sector,lot_size\n")
        sectors = ("Technology", "Financials", "Health Care", "Industrials", "Energy", "Consumer")
        for i, name in enumerate(names):
            handle.write(f"{name},USD,{'XNYS' if i % 2 == 0 else 'XNAS'},{sectors[i % len(sectors)]},1\n")

    # The market: one random walk per symbol on a one-second grid over the session.
    open_ms, close_ms = _ms(BUSINESS_DATE, SESSION_OPEN_UTC), _ms(BUSINESS_DATE, SESSION_CLOSE_UTC)
    seconds = (close_ms - open_ms) // 1000
    start_price = np.clip(np.round(rng.lognormal(np.log(60.0), 0.9, n_symbols), 2), 2.0, 900.0)
    daily_vol = rng.uniform(0.01, 0.04, n_symbols).astype(np.float32)
    steps = rng.standard_normal((n_symbols, seconds + 1), dtype=np.float32)
    steps *= (daily_vol / np.sqrt(np.float32(seconds)))[:, None]
    log_path = np.cumsum(steps, axis=1, dtype=np.float32)
    del steps
    half_spread_bps = rng.uniform(1.0, 6.0, n_symbols)

    per_vendor = [rows - rows // len(VENDORS) * (len(VENDORS) - 1)] + [rows // len(VENDORS)] * (len(VENDORS) - 1)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    planted_total = {name: 0 for name in FAULT_RATES}
    files, rows_by_vendor, total_bytes = [], {}, 0
    for v, (vendor, n) in enumerate(zip(VENDORS, per_vendor)):
        vrng = np.random.default_rng([seed, v])
        counts = np.full(n_symbols, n // n_symbols, dtype=np.int64)
        counts[np.roll(np.arange(n_symbols), v)[: n % n_symbols]] += 1
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        codes = np.repeat(np.arange(n_symbols, dtype=np.int32), counts)  # stream order: symbol, then time
        j = np.arange(n, dtype=np.int64) - starts[codes]
        k = counts[codes]
        span = close_ms - open_ms
        ts = open_ms + np.floor((j + vrng.random(n)) * (span / k)).astype(np.int64)
        np.clip(ts, open_ms + 1, close_ms - 1, out=ts)
        del j

        mid = start_price[codes] * np.exp(log_path[codes, (ts - open_ms) // 1000].astype(np.float64))
        if v > 0:  # another vendor's view of the same book: within a fraction of a basis point
            mid *= 1 + np.clip(vrng.normal(0.0, 0.3e-4, n), -1e-4, 1e-4)
        mid_cents = np.rint(mid * 100).astype(np.int64)
        half = np.maximum(np.rint(mid_cents * half_spread_bps[codes] * 1e-4 * vrng.uniform(0.7, 1.3, n)), 1).astype(np.int64)
        mid_cents = np.maximum(mid_cents, half + 1)
        bid, ask = mid_cents - half, mid_cents + half
        del mid, mid_cents, half
        bid_size = vrng.integers(1, 51, n, dtype=np.int64) * 100
        ask_size = vrng.integers(1, 51, n, dtype=np.int64) * 100
        arrival = ts.copy()  # file order: when the quote arrived, whatever it is stamped with

        # Faults on distinct rows that are neither the first nor the last of their stream.
        position = np.arange(n, dtype=np.int64) - starts[codes]
        eligible = np.flatnonzero((position > 0) & (position < counts[codes] - 1))
        del position
        wanted = {name: max(1, int(round(rate * n))) for name, rate in FAULT_RATES.items()}
        chosen = vrng.choice(eligible, size=sum(wanted.values()), replace=False)
        bid_null = np.zeros(n, dtype=bool)
        at = 0
        for name, count in wanted.items():
            idx = np.sort(chosen[at:at + count])
            at += count
            planted_total[name] += count
            if name == "null_bid":
                bid_null[idx] = True
            elif name == "crossed":
                bid[idx], ask[idx] = ask[idx], bid[idx].copy()
            elif name == "zero_bid":
                bid[idx] = 0
            elif name == "locked":
                ask[idx] = bid[idx]
            elif name == "next_day":
                ts[idx] += 86_400_000
            elif name == "backwards":
                ts[idx] = arrival[idx - 1] - 1000  # the previous row of a stream is its previous quote
        order = np.argsort(arrival, kind="stable")
        table = pa.table({
            "ts": ts[order],
            "symbol": pa.DictionaryArray.from_arrays(pa.array(codes[order]), pa.array(names)),
            "bid": pa.array(bid[order], mask=bid_null[order]),
            "ask": ask[order], "bid_size": bid_size[order], "ask_size": ask_size[order],
        })
        del ts, bid, ask, bid_size, ask_size, arrival, codes, order, bid_null
        path = day_dir / f"quotes_{vendor}.csv"
        con.register("vendor_quotes", table)
        price = "printf('%d.%02d', {0} // 100, {0} % 100) AS {0}"
        con.execute(f"""
            COPY (
                SELECT strftime(epoch_ms(ts), '%Y-%m-%dT%H:%M:%S.%gZ') AS ts, symbol::VARCHAR AS symbol,
                       {price.format('bid')}, {price.format('ask')}, bid_size, ask_size
                FROM vendor_quotes
            ) TO '{str(path).replace("'", "''")}' (FORMAT csv, HEADER true, DELIMITER ',')
        """)
        con.unregister("vendor_quotes")
        del table
        files.append(str(path.relative_to(out)))
        rows_by_vendor[vendor] = n
        total_bytes += path.stat().st_size
    con.close()
    return {"rows": rows, "rows_by_vendor": rows_by_vendor, "planted": planted_total, "files": files,
            "bytes": total_bytes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write (or reuse) a benchmark quotes landing day.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--symbols", type=int, default=DEFAULT_SYMBOLS)
    args = parser.parse_args(argv)
    day = quotes_day(args.rows, cache_dir=args.cache_dir, seed=args.seed, symbols=args.symbols)
    verb = "reused" if day.reused else f"generated in {day.generated_seconds:.1f} s"
    print(f"{day.rows:,} quotes ({day.bytes / 2**20:,.0f} MiB) {verb}: {day.landing_root}")
    print("planted faults: " + ", ".join(f"{k}={v:,}" for k, v in day.planted.items()))


if __name__ == "__main__":
    main()
