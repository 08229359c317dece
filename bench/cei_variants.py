"""What CEI's fixes of the issue-3 targets bought: the engine's ingest and checks as they run now
against the way they ran before and the variants that were weighed, each in a fresh process
(cold buffer pool, own peak memory).

    .venv/bin/python -m bench.cei_variants [--rows 10000000] [--repeat 3] [--only ingest|check]

Run ``bench.validation`` first: this reads its cached landing day and the warehouse file its
``cei`` run left (``.cei/bench/work/<rows>/warehouse.duckdb``). Nothing here changes the engine.

Besides wall time and peak memory, every variant reports the CPU seconds of its threads and what
it would take on an idle machine (``bench.threads.ThreadClock``). This checkout is shared by
several engineers on two cores, so wall times swing with their work; the other two hardly do. A
variant whose work runs on one thread has an idle-machine time close to its CPU time, a parallel
one about half of it on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.quotes_data import default_cache_dir, quotes_day
from bench.threads import ThreadClock
from bench.validation import QUOTES_KEY_COLUMNS, REPO_ROOT, load_quote_rules, peak_rss_mib

W = "business_date = DATE '2026-01-15'"

# timestamp_monotonicity by [vendor, symbol] as the engine ran it before (one window over the
# whole table, the file name in its payload, counted by a window over the result).
WINDOW_MONO = f"""
    SELECT *, count(*) OVER () AS failing_rows FROM (
        WITH ordered AS (
            SELECT "vendor", "symbol", "ts" AS ts,
                   lag("ts") OVER (PARTITION BY "vendor", "symbol" ORDER BY _source_line) AS previous_ts,
                   _source_file, _source_line
            FROM raw.quotes WHERE {W}
        )
        SELECT * FROM ordered WHERE ts < previous_ts
    ) LIMIT 20"""
# The fix proposed first: the same window with only the columns it sorts on in its payload.
NARROW_MONO = WINDOW_MONO.replace("previous_ts,\n                   _source_file, _source_line",
                                  "previous_ts, _source_line")
# The row rules' failing rows as the engine sampled them before: per failing rule, 20 rows in
# file order and the distinct symbols and vendors, three scans each.
ROW_CONDITIONS = ["ts IS NULL OR symbol IS NULL OR bid IS NULL OR ask IS NULL",
                  "bid < 0.000001 OR bid > 1000000 OR ask < 0.000001 OR ask > 1000000",
                  "bid > ask", "bid = ask", "CAST(ts AS DATE) <> business_date"]
SAMPLE_PER_RULE = [
    q for c in ROW_CONDITIONS for q in (
        f"SELECT business_date, vendor, symbol, ts, bid, ask, _source_file, _source_line FROM raw.quotes "
        f"WHERE {W} AND ({c}) ORDER BY _source_line LIMIT 20",
        f"SELECT DISTINCT symbol FROM raw.quotes WHERE {W} AND ({c}) ORDER BY 1 LIMIT 50",
        f"SELECT DISTINCT vendor FROM raw.quotes WHERE {W} AND ({c}) ORDER BY 1 LIMIT 50",
    )
]
# vendor_agreement and price_spike each aggregated the quotes into 5-minute median mids before.
BUCKETED_MIDS = [
    f"SELECT count(*), sum(mid) FROM (SELECT business_date, symbol, vendor, time_bucket(to_microseconds(300000000), ts) "
    f"AS bucket, quantile_disc(bid + ask, 0.5) / 2 AS mid FROM raw.quotes WHERE {W} AND bid > 0 AND ask >= bid GROUP BY ALL)",
    f"SELECT count(*), sum(med), sum(lo), sum(hi) FROM (SELECT business_date, vendor, symbol, "
    f"time_bucket(to_microseconds(300000000), ts) AS bucket, quantile_disc(bid + ask, 0.5) / 2 AS med, "
    f"min(bid + ask) / 2 AS lo, max(bid + ask) / 2 AS hi FROM raw.quotes WHERE {W} AND bid > 0 AND ask >= bid GROUP BY ALL)",
]

CHECK_VARIANTS = {
    "every quotes rule as the engine runs it now (run_rules)": ("engine", None),
    "timestamp_monotonicity now: per-symbol lists put in file order (run_rules on that rule alone)":
        ("engine", ["timestamp_monotonicity"]),
    "timestamp_monotonicity before: one window over the table, file name in the payload": ("sql", [WINDOW_MONO]),
    "timestamp_monotonicity, the fix proposed first: that window with a narrow payload": ("sql", [NARROW_MONO]),
    "row rules now: one counting scan, one scan sampling every failing rule (run_rules)": ("engine", "row"),
    "row-rule samples before: three scans per failing rule (15 here)": ("sql", SAMPLE_PER_RULE),
    "vendor_agreement + price_spike now: one shared per-bucket aggregate (run_rules)":
        ("engine", ["vendor_agreement", "price_spike"]),
    "their bucketed median mids before: the same aggregate twice": ("sql", BUCKETED_MIDS),
}

COLUMNS = "{'ts': 'TIMESTAMPTZ', 'symbol': 'VARCHAR', 'bid': 'DOUBLE', 'ask': 'DOUBLE', 'bid_size': 'BIGINT', 'ask_size': 'BIGINT'}"
TABLE = ("ts TIMESTAMP, symbol VARCHAR, bid DOUBLE, ask DOUBLE, bid_size BIGINT, ask_size BIGINT, vendor VARCHAR, "
         "business_date DATE, _source_file VARCHAR, _source_line BIGINT, _loaded_at TIMESTAMP")
REJECTS = "store_rejects=true, rejects_table='cei_rejects', rejects_scan='cei_reject_scans', rejects_limit=1000"
INGEST_VARIANTS = {
    "load_dataset now: staged, lines from the staging order, the raw table written unordered": {"engine": True},
    "staged the same way, the raw table written in file order (the engine before; DuckDB writes at the checkpoint)": {
        "staged": True},
    "before: one INSERT numbering the rows with row_number() OVER (), ICU cast of ts": {
        "ts": "ts::TIMESTAMP", "line": "row_number() OVER () + 1"},
    "that INSERT without line numbers (what numbering cost: the whole statement on one thread)": {
        "ts": "ts::TIMESTAMP", "line": "NULL"},
    "that INSERT without line numbers, ts from its epoch (no time-zone rules per value)": {
        "ts": "make_timestamp(epoch_us(ts))", "line": "NULL"},
    "parse only: read_csv of both files with the spec's types, nothing stored": {"parse_only": True},
}


def _run_variant(kind: str, name: str, rows: int) -> dict:
    import duckdb

    day = quotes_day(rows, cache_dir=default_cache_dir())
    files = {v: str(day.day_dir / f"quotes_{v}.csv") for v in day.rows_by_vendor}
    work = default_cache_dir().parent / "work" / str(rows)
    db = work / "variant.duckdb"
    if kind == "check":
        import exchange_calendars  # noqa: F401  (imported lazily by the rules; not what is measured)

        from asset_checks.engine import run_rules, table_context
        from asset_checks.vocabulary import RULE_TYPES

        conn = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
        how, what = CHECK_VARIANTS[name]
        rules = load_quote_rules()
        if what == "row":
            rules = [r for r in rules if RULE_TYPES[r.type].kind == "row"]
        elif what is not None and how == "engine":
            rules = [r for r in rules if r.name in what]
    else:
        for stale in (db, Path(str(db) + ".wal")):
            stale.unlink(missing_ok=True)
        spec = INGEST_VARIANTS[name]
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = duckdb.connect() if spec.get("parse_only") else duckdb.connect(str(db))
        if not spec.get("engine") and not spec.get("parse_only"):
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute(f"CREATE TABLE q ({TABLE})")

    clock, started = ThreadClock().start(), time.perf_counter()
    if kind == "check":
        if how == "engine":
            run_rules(conn, table_context(conn, "quotes", "raw.quotes", day.business_date, QUOTES_KEY_COLUMNS), rules)
        else:
            for sql in what:
                conn.execute(sql).fetchall()
    elif spec.get("engine"):
        from cei_assets.ingestion import load_dataset
        from cei_assets.landing import QUOTES

        result = load_dataset(conn, QUOTES, day.landing_root, day.business_date)
        assert result.ok and result.rows == rows, result.summary()
    elif spec.get("parse_only"):
        for path in files.values():
            conn.execute(f"SELECT count(*), max(ts), max(symbol), max(bid), max(ask), max(bid_size), max(ask_size) "
                         f"FROM read_csv('{path}', header=true, columns={COLUMNS}, auto_detect=false)").fetchall()
    elif spec.get("staged"):
        conn.execute("SET preserve_insertion_order = true")
        conn.execute("BEGIN")
        for vendor, path in files.items():
            conn.execute("DROP TABLE IF EXISTS cei_rejects; DROP TABLE IF EXISTS cei_reject_scans")
            conn.execute(f"CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM read_csv('{path}', header=true, "
                         f"columns={COLUMNS}, auto_detect=false, {REJECTS})")
            first = conn.execute("SELECT min(rowid) FROM staged").fetchone()[0]
            conn.execute(
                f"INSERT INTO q SELECT make_timestamp(epoch_us(ts)), symbol, bid, ask, bid_size, ask_size, '{vendor}', "
                f"DATE '{day.business_date}', '{path}', rowid - {first} + 2, now()::TIMESTAMP FROM staged")
        conn.execute("COMMIT")
    else:
        conn.execute("BEGIN")
        for vendor, path in files.items():
            conn.execute("DROP TABLE IF EXISTS cei_rejects; DROP TABLE IF EXISTS cei_reject_scans")
            conn.execute(
                f"INSERT INTO q SELECT {spec['ts']}, symbol, bid, ask, bid_size, ask_size, '{vendor}', "
                f"DATE '{day.business_date}', '{path}', {spec['line']}, now()::TIMESTAMP FROM read_csv('{path}', "
                f"header=true, columns={COLUMNS}, auto_detect=false, {REJECTS})")
        conn.execute("COMMIT")
    if kind != "check" and not spec.get("parse_only"):
        # The rows are durable in the warehouse file only once checkpointed; a Dagster step pays
        # that when it closes its connection, so every ingest variant does here.
        conn.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    clock.stop()
    conn.close()
    if kind != "check":
        for stale in (db, Path(str(db) + ".wal")):
            stale.unlink(missing_ok=True)
    return {"seconds": seconds, "cpu_s": clock.cpu_s, "idle_s": clock.idle_s, "peak_mib": peak_rss_mib()}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--variant"]:
        print(json.dumps(_run_variant(argv[1], argv[2], int(argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (interleaved); medians are printed")
    parser.add_argument("--only", choices=("ingest", "check"), default=None)
    args = parser.parse_args(argv)
    kinds = [(k, v) for k, v in (("ingest", INGEST_VARIANTS), ("check", CHECK_VARIANTS)) if args.only in (None, k)]
    for kind, variants in kinds:
        runs: dict[str, list[dict]] = {name: [] for name in variants}
        for _ in range(args.repeat):  # interleaved, so that a busy spell of the machine hits every variant alike
            for name in variants:
                out = subprocess.run([sys.executable, "-m", "bench.cei_variants", "--variant", kind, name, str(args.rows)],
                                     cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{kind} variants, {args.rows:,} quotes, median of {args.repeat} "
              "(wall s, CPU s, idle-machine s, peak MiB):")
        for name, results in runs.items():
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            print(f"  {med['seconds']:6.2f} s {med['cpu_s']:6.2f} cpu {med['idle_s']:6.2f} idle "
                  f"{med['peak_mib']:6.0f} MiB  {name}")


if __name__ == "__main__":
    main()
