"""Where CEI misses the issue-3 targets, and what the fixes would buy: the engine's own SQL against
rewritten variants, each in a fresh process (cold buffer pool, own peak memory).

    .venv/bin/python -m bench.cei_variants [--rows 10000000]

Run ``bench.validation`` first: this reads its cached landing day and the warehouse file its
``cei`` run left (``.cei/bench/work/<rows>/warehouse.duckdb``). Nothing here changes the engine;
the variants are proposals, measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.quotes_data import default_cache_dir, quotes_day
from bench.validation import REPO_ROOT, peak_rss_mib

W = "business_date = DATE '2026-01-15'"
# timestamp_monotonicity by [vendor, symbol] as the engine first wrote it (before commit cb8ce5c):
# the file name in the sort key, run once for the count and again with LIMIT 20 for the samples.
ENGINE_MONO = f"""
    WITH ordered AS (
        SELECT "vendor", "symbol", "ts" AS ts,
               lag("ts") OVER (PARTITION BY "vendor", "symbol" ORDER BY _source_file, _source_line) AS previous_ts,
               _source_file, _source_line
        FROM raw.quotes WHERE {W}
    )
    SELECT * FROM ordered WHERE ts < previous_ts"""
LINE_MONO = ENGINE_MONO.replace("ORDER BY _source_file, _source_line", "ORDER BY _source_line")
ONE_PASS_MONO = f"""
    CREATE TEMP TABLE backwards AS
    SELECT * FROM (
        SELECT vendor, symbol, ts, lag(ts) OVER (PARTITION BY vendor, symbol ORDER BY _source_line) AS previous_ts,
               _source_line
        FROM raw.quotes WHERE {W}
    ) WHERE ts < previous_ts"""

CHECK_VARIANTS = {
    "timestamp_monotonicity as the engine runs it now (run_rules on that rule alone)": "engine",
    "the same window with the file name in the sort key (ORDER BY _source_file, _source_line; count, then LIMIT 20)":
        [f"SELECT count(*) FROM ({ENGINE_MONO})", f"{ENGINE_MONO} LIMIT 20"],
    "integer key, narrow payload (no _source_file), one pass into a temp table, then count and 20 samples":
        [ONE_PASS_MONO, "SELECT count(*) FROM backwards", "SELECT * FROM backwards ORDER BY _source_line LIMIT 20"],
    "the row rules' single count_if scan alone":
        [f"SELECT count(*), count_if(bid IS NULL), count_if(bid > ask), count_if(bid = ask), "
         f"count_if(bid < 0.000001 OR bid > 1000000 OR ask < 0.000001 OR ask > 1000000), "
         f"count_if(CAST(ts AS DATE) <> business_date) FROM raw.quotes WHERE {W}"],
}

COLUMNS = "{'ts': 'TIMESTAMPTZ', 'symbol': 'VARCHAR', 'bid': 'DOUBLE', 'ask': 'DOUBLE', 'bid_size': 'BIGINT', 'ask_size': 'BIGINT'}"
INGEST_VARIANTS = {
    "load_dataset into a warehouse file (as the benchmark and production do)": {"database": "file"},
    "load_dataset into an in-memory database (no compression, nothing written)": {"database": ":memory:"},
    "load_dataset's INSERT as SQL, into a warehouse file": {"sql": True, "line": "row_number() OVER () + 1"},
    "the same INSERT without row_number() OVER () for _source_line (a streaming window: one thread)":
        {"sql": True, "line": "NULL"},
    "parse only: read_csv of both files with the spec's types, nothing stored": {"parse_only": True},
}
TABLE = ("ts TIMESTAMP, symbol VARCHAR, bid DOUBLE, ask DOUBLE, bid_size BIGINT, ask_size BIGINT, vendor VARCHAR, "
         "business_date DATE, _source_file VARCHAR, _source_line BIGINT, _loaded_at TIMESTAMP")
REJECTS = "store_rejects=true, rejects_table='cei_rejects', rejects_scan='cei_reject_scans', rejects_limit=1000"


def _run_variant(kind: str, name: str, rows: int) -> dict:
    import duckdb

    day = quotes_day(rows, cache_dir=default_cache_dir())
    files = {v: str(day.day_dir / f"quotes_{v}.csv") for v in day.rows_by_vendor}
    started = time.perf_counter()
    if kind == "check":
        conn = duckdb.connect(str(default_cache_dir().parent / "work" / str(rows) / "warehouse.duckdb"), read_only=True)
        if CHECK_VARIANTS[name] == "engine":
            from asset_checks.engine import run_rules, table_context
            from bench.validation import QUOTES_KEY_COLUMNS, load_quote_rules

            rules = [r for r in load_quote_rules() if r.type == "timestamp_monotonicity"]
            run_rules(conn, table_context(conn, "quotes", "raw.quotes", day.business_date, QUOTES_KEY_COLUMNS), rules)
        else:
            for sql in CHECK_VARIANTS[name]:
                conn.execute(sql).fetchall()
    else:
        spec = INGEST_VARIANTS[name]
        if spec.get("parse_only"):
            conn = duckdb.connect()
            for path in files.values():
                conn.execute(f"SELECT count(*), max(ts), max(bid) FROM read_csv('{path}', header=true, columns={COLUMNS}, "
                             "auto_detect=false)").fetchall()
        elif spec.get("sql"):
            db = default_cache_dir().parent / "work" / str(rows) / "variant.duckdb"
            for stale in (db, Path(str(db) + ".wal")):
                stale.unlink(missing_ok=True)
            conn = duckdb.connect(str(db))
            conn.execute(f"CREATE TABLE q ({TABLE})")
            started = time.perf_counter()
            conn.execute("BEGIN")
            for vendor, path in files.items():
                conn.execute("DROP TABLE IF EXISTS cei_rejects; DROP TABLE IF EXISTS cei_reject_scans")
                conn.execute(
                    f"INSERT INTO q SELECT ts::TIMESTAMP, symbol, bid, ask, bid_size, ask_size, '{vendor}', "
                    f"DATE '{day.business_date}', '{path}', {spec['line']}, now()::TIMESTAMP FROM read_csv('{path}', "
                    f"header=true, columns={COLUMNS}, auto_detect=false, {REJECTS})")
            conn.execute("COMMIT")
            conn.close()
            db.unlink(missing_ok=True)
        else:
            from cei_assets.ingestion import load_dataset
            from cei_assets.landing import QUOTES

            db = default_cache_dir().parent / "work" / str(rows) / "variant.duckdb"
            for stale in (db, Path(str(db) + ".wal")):
                stale.unlink(missing_ok=True)
            conn = duckdb.connect(str(db) if spec["database"] == "file" else ":memory:")
            started = time.perf_counter()
            result = load_dataset(conn, QUOTES, day.landing_root, day.business_date)
            assert result.ok and result.rows == rows, result.summary()
            conn.close()
            db.unlink(missing_ok=True)
    return {"seconds": time.perf_counter() - started, "peak_mib": peak_rss_mib()}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--variant"]:
        print(json.dumps(_run_variant(argv[1], argv[2], int(argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    for kind, variants in (("ingest", INGEST_VARIANTS), ("check", CHECK_VARIANTS)):
        print(f"{kind} variants, {args.rows:,} quotes:")
        for name in variants:
            out = subprocess.run([sys.executable, "-m", "bench.cei_variants", "--variant", kind, name, str(args.rows)],
                                 cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {result['seconds']:6.2f} s  {result['peak_mib']:6.0f} MiB  {name}")


if __name__ == "__main__":
    main()
