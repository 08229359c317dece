"""The validation benchmark on the fills (issue 8): CEI against Great Expectations and pandera
on the rules of ``asset_checks/rules/executions.yaml``.

    .venv/bin/python -m bench.validation_executions [--sizes 100k,300k,1M] [--repeat 3]
                                                    [--out docs/benchmarks.md]

The machinery is the quotes benchmark's (``bench.validation``): the same engines, each
measurement in its own subprocess (``run_engine``), the same translation of the YAML rules into
an Expectation Suite and a pandera schema (``plan_rules``), the same agreement check. Only the
table and the data differ.

The data: the fills of the daily-graph benchmark's generated day (``bench.daily_graph``: 10
quotes per fill, so 100k, 300k and 1M fills are the days of 1M, 3M and 10M quotes), copied
with the reference files into a landing root of their own, where one fault per rule is planted
on distinct rows at a fixed rate (``FAULTS``): every engine must find exactly what was planted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from bench import validation
from bench.report import machine_info, write_section

TABLE = "executions"
START_MARKER = "<!-- validation-executions:start -->"
END_MARKER = "<!-- validation-executions:end -->"
DEFAULT_SIZES = (100_000, 300_000, 1_000_000)
QUOTES_PER_FILL = 10  # the daily-graph days: 1M quotes and 100k fills, ...
DATA_VERSION = 1
SEED = 20260115


@dataclasses.dataclass(frozen=True)
class Fault:
    rule: str  # the rule of executions.yaml that must catch it
    rate: float  # share of the fills that carry it (at least one)
    column: str
    value: str  # SQL over the original row (all columns as text)
    what: str

    def failing_rows(self, planted: int) -> int:
        """Rows the rule must fail for ``planted`` faulty rows: a duplicate fails with its original."""
        return 2 * planted if self.rule == "unique_exec_id" else planted


FAULTS = (
    Fault("required_fields", 1e-3, "price", "NULL", "price left empty"),
    Fault("unique_exec_id", 1e-4, "exec_id", "previous_exec_id", "the previous fill's exec_id repeated"),
    Fault("allowed_values_side", 5e-5, "side", "'HOLD'", "side HOLD"),
    Fault("positive_quantity_price", 5e-5, "quantity", "'0'", "quantity 0"),
    Fault("value_range_fee", 5e-5, "fee", "'-0.0100'", "a negative fee"),
    Fault("timestamp_within_date_ts", 2e-5, "ts", "replace(ts, '{date}', '{next}')", "stamped on the next day"),
    Fault("known_accounts", 2e-5, "account", "'ACC-UNKNOWN'", "an unknown account"),
    Fault("known_symbols", 2e-5, "symbol", "'ZZZZ'", "an unknown symbol"),
)


@dataclasses.dataclass
class ExecutionsDay:
    landing_root: Path
    business_date: dt.date
    rows: int
    planted: dict[str, int]  # rule -> faulty rows planted
    bytes: int
    generated_seconds: float
    reused: bool

    def expected(self, rule: str) -> int:
        fault = next((f for f in FAULTS if f.rule == rule), None)
        return 0 if fault is None else fault.failing_rows(self.planted.get(rule, 0))


def executions_day(fills: int, *, cache_dir: Path | None = None) -> ExecutionsDay:
    """A landing root with one date of about ``fills`` fills (faults planted) and the reference files."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    from bench.daily_graph import landing_day
    from bench.quotes_data import default_cache_dir

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    source = landing_day(QUOTES_PER_FILL * fills, fills, cache_dir=cache_dir)
    key = {"version": DATA_VERSION, "source": source.landing_root.name, "seed": SEED,
           "faults": [dataclasses.astuple(f) for f in FAULTS]}
    root = cache_dir / f"executions-{fills}-s{SEED}-v{DATA_VERSION}"
    manifest_path = root / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") == json.loads(json.dumps(key)):
            return _day_from(root, manifest, reused=True)
    started = time.perf_counter()
    building = cache_dir / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    day = source.business_date
    (building / day.isoformat()).mkdir(parents=True)
    shutil.copytree(source.landing_root / "reference", building / "reference")

    conn = duckdb.connect()
    source_file = str(source.landing_root / day.isoformat() / "executions.csv").replace("'", "''")
    conn.execute(f"CREATE TABLE fills AS SELECT row_number() OVER () AS rn, * "
                 f"FROM read_csv('{source_file}', all_varchar = true, header = true)")
    (rows,) = conn.execute("SELECT count(*) FROM fills").fetchone()
    columns = [c for (c,) in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'fills' ORDER BY ordinal_position"
    ).fetchall() if c != "rn"]

    # Distinct rows per fault, never the first; a duplicate only on an even row, so that the row
    # it copies (the one before) is never itself a duplicate: each planted duplicate fails two rows.
    rng = np.random.default_rng(SEED)
    wanted = {f.rule: max(1, round(f.rate * rows)) for f in FAULTS}
    duplicates = rng.choice(np.arange(2, rows + 1, 2), size=wanted["unique_exec_id"], replace=False)
    others = np.setdiff1d(np.arange(2, rows + 1), duplicates)
    rest = rng.choice(others, size=sum(n for r, n in wanted.items() if r != "unique_exec_id"), replace=False)
    chosen_rn, chosen_fault, at = [duplicates], [np.full(len(duplicates), "unique_exec_id")], 0
    for fault in FAULTS:
        if fault.rule == "unique_exec_id":
            continue
        chosen_rn.append(rest[at:at + wanted[fault.rule]])
        chosen_fault.append(np.full(wanted[fault.rule], fault.rule))
        at += wanted[fault.rule]
    conn.register("planted", pa.table({"rn": np.concatenate(chosen_rn), "fault": np.concatenate(chosen_fault)}))
    next_day = day + dt.timedelta(days=1)
    selects = []
    for column in columns:
        value = f'"{column}"'
        for fault in FAULTS:
            if fault.column == column:
                expr = fault.value.format(date=day.isoformat(), next=next_day.isoformat())
                value = f"CASE WHEN fault = '{fault.rule}' THEN {expr} ELSE {value} END"
        selects.append(f'{value} AS "{column}"')
    target = str(building / day.isoformat() / "executions.csv").replace("'", "''")
    conn.execute(f"""
        COPY (
            SELECT {', '.join(selects)}
            FROM (SELECT *, lag(exec_id) OVER (ORDER BY rn) AS previous_exec_id FROM fills)
            LEFT JOIN planted USING (rn)
            ORDER BY rn
        ) TO '{target}' (FORMAT csv, HEADER true)
    """)
    conn.close()
    manifest = {"key": key, "rows": int(rows), "business_date": day.isoformat(), "planted": wanted,
                "bytes": (building / day.isoformat() / "executions.csv").stat().st_size,
                "generated_seconds": round(time.perf_counter() - started, 3)}
    manifest_path = building / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    return _day_from(root, manifest, reused=False)


def _day_from(root: Path, manifest: dict, reused: bool) -> ExecutionsDay:
    return ExecutionsDay(root, dt.date.fromisoformat(manifest["business_date"]), manifest["rows"], manifest["planted"],
                         manifest["bytes"], manifest["generated_seconds"], reused)


# =============================================================================== the benchmark


def check_planted(plan, runs: dict, day: ExecutionsDay) -> list[str]:
    """Every engine must fail exactly the planted rows of every shared rule."""
    problems = []
    for rule in plan.same:
        want = day.expected(rule.name)
        for engine, m in runs.items():
            got = m.result.get("counts", {}).get(rule.name)
            if got is not None and int(got) != want:
                problems.append(f"{engine} failed {int(got):,} rows of {rule.name}, {want:,} were planted")
    return problems


def run_benchmark(sizes: list[int], *, repeat: int = 1, out: Path | None = validation.DEFAULT_OUT,
                  data_dir: Path | None = None, work_dir: Path | None = None,
                  engines: tuple[str, ...] = validation.ENGINES, command: str | None = None,
                  quiet_wait_s: float = 0.0, log=print) -> dict:
    from bench.quotes_data import default_cache_dir

    data_dir = Path(data_dir) if data_dir else default_cache_dir()
    work_dir = Path(work_dir) if work_dir else data_dir.parent / "work"
    engines, skipped = validation.available_engines(engines)
    if "cei_checks" in engines and "cei" not in engines:
        engines = ("cei", *engines)
    plan = validation.plan_rules(validation.load_table_rules(TABLE))
    log(f"{TABLE}.yaml: {len(plan.rules)} rules; shared with the baselines: {', '.join(plan.same_names)}"
        + (f"; CEI only: {', '.join(plan.cei_only)}" if plan.cei_only else ""))
    for engine, why in skipped.items():
        log(f"skipping {engine}: {why}")
    results = []
    for fills in sizes:
        day = executions_day(fills, cache_dir=data_dir)
        log(f"{day.rows:,} fills: {day.landing_root} ({'reused' if day.reused else f'written in {day.generated_seconds:.1f} s'})")
        size_dir = work_dir / f"{TABLE}-{fills}"
        size_dir.mkdir(parents=True, exist_ok=True)
        runs = {e: [] for e in engines}
        for attempt in range(repeat):
            for engine in engines:
                db = size_dir / ("warehouse-same.duckdb" if engine == "cei_same" else "warehouse.duckdb")
                job = {"table": TABLE, "rows": day.rows, "landing_root": str(day.landing_root),
                       "business_date": day.business_date.isoformat(), "db": str(db)}
                if quiet_wait_s:
                    validation.wait_until_quiet(quiet_wait_s, log=log)
                m = validation.run_engine(engine, job, size_dir)
                if m.rows != day.rows:
                    raise validation.BenchmarkError(f"{engine} saw {m.rows:,} fills of {day.rows:,}")
                runs[engine].append(m)
                log(f"  [{attempt + 1}/{repeat}] {validation.ENGINE_LABELS[engine]:<38} load {m.load_s:7.2f} s  "
                    f"check {m.check_s:7.2f} s  total {m.total_s:7.2f} s  peak {m.peak_mib:7.0f} MiB"
                    f"  others {m.others_cores or 0:4.1f} cores")
        for stale in size_dir.glob("warehouse-same.duckdb*"):
            stale.unlink()
        agreement, problems = {}, []
        for attempt in range(repeat):
            attempt_runs = {e: runs[e][attempt] for e in engines}
            table, found = validation.check_agreement(plan, attempt_runs, {})
            agreement = agreement or table
            for p in found + check_planted(plan, attempt_runs, day):
                if p not in problems:
                    problems.append(p)
        results.append(validation.SizeResult(day.rows, day, runs, agreement, problems))
    machine = machine_info()
    report = render_report(results, plan, engines, skipped, machine, repeat, command)
    if out is not None:
        write_section(Path(out), report)
    lines = summarize(results, engines)
    for line in lines:
        log(line)
    disagreements = [f"{r.rows:,} fills: {p}" for r in results for p in r.disagreements]
    if disagreements:
        log("ENGINES DISAGREE OR MISS PLANTED FAULTS:\n  " + "\n  ".join(disagreements))
    return {"results": results, "plan": plan, "engines": engines, "report": report, "summary": lines,
            "disagreements": disagreements}


def ratios(r: validation.SizeResult) -> dict[str, float]:
    """How many times longer each baseline took than CEI on the same rules, load included."""
    base = r.median("cei_same", "total_s") if "cei_same" in r.runs else None
    return {e: r.median(e, "total_s") / base for e in ("ge", "pandera") if base and e in r.runs}


def summarize(results, engines) -> list[str]:
    lines = []
    for r in results:
        parts = [f"{e} {r.median(e, 'total_s'):.2f} s/{r.median(e, 'peak_mib'):,.0f} MiB" for e in engines]
        lines.append(f"{r.rows:>10,} fills: " + "; ".join(parts) + "; "
                     + ", ".join(f"{e} takes {x:.1f}× CEI" for e, x in ratios(r).items()))
    return lines


def render_report(results, plan, engines, skipped, machine, repeat, command) -> str:
    cmd = command or ".venv/bin/python -m bench.validation_executions"
    lines = [
        START_MARKER,
        "## Validation benchmark on the fills: CEI vs Great Expectations vs pandera (issue 8)",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `{cmd}` (median of {repeat}"
        f" run{'s' if repeat > 1 else ''} per engine and size). Harness: `bench/validation_executions.py`, on the"
        " machinery of the quotes benchmark above (`bench/validation.py`): the same engines, each run in its own"
        " subprocess, imports excluded and loading included for every engine, the same columns. CEI loads"
        " `executions.csv` with `load_dataset` into a DuckDB warehouse file (with `reference/securities.csv` and"
        " `reference/accounts.csv`, which two rules reference) and runs `asset_checks/rules/executions.yaml`;"
        " Great Expectations and pandera read the same CSV with `pandas.read_csv(engine=\"pyarrow\")`.",
        "",
        f"Machine: {machine['cpu']}, `nproc` = {machine['nproc']}, RAM {machine['ram']}; Python {machine['python']},"
        f" duckdb {machine['duckdb']}, pandas {machine['pandas']}, great_expectations {machine['great_expectations']},"
        f" pandera {machine['pandera']}.",
        "",
        "Data: the fills of the daily-graph benchmark's days (`bench/daily_graph.py`: the project's sample-data"
        " generator, orders split into one to four fills, priced off the quotes), with one fault per rule"
        " planted on distinct rows: "
        + "; ".join(f"{f.what} {f.rate:.3%} (`{f.rule}`)" for f in FAULTS)
        + ", at least one each. Every engine must fail exactly the planted rows (a duplicated `exec_id` fails"
        " both rows).",
        "",
        f"`asset_checks/rules/{TABLE}.yaml` held {len(plan.rules)} rules when this ran:",
        "",
        "| rule | CEI (SQL in DuckDB) | Great Expectations 1.x | pandera |",
        "| --- | --- | --- | --- |",
    ]
    for rule in plan.rules:
        if rule.name in plan.how:
            h = plan.how[rule.name]
            lines.append(f"| `{rule.name}` | `{validation._written(rule)}` | {h['ge']} | {h['pandera']} |")
        else:
            lines.append(f"| `{rule.name}` | `{validation._written(rule)}` | not run: {plan.cei_only[rule.name]} | not run |")
    lines.append("")
    if skipped:
        lines += ["Not run here: " + "; ".join(f"{e}: {why}" for e, why in skipped.items()), ""]
    for r in results:
        lines += [f"### {r.rows:,} fills ({r.data.bytes / 2**20:,.1f} MiB of CSV)", "",
                  *validation.engine_table(r, plan, engines), ""]
        busy = max((m.others_cores or 0.0) for runs in r.runs.values() for m in runs)
        if busy > 0.3:
            lines += [f"Other processes used up to {busy:.1f} of the {machine['nproc']} cores during some of these runs"
                      " (column \"others\"): those wall times are inflated by the competition; \"idle-machine s\""
                      " estimates them without it (`bench/threads.py`).", ""]
        verdict = ("every engine agrees and fails exactly the planted rows" if not r.disagreements
                   else "**ENGINES DISAGREE**: " + "; ".join(r.disagreements))
        counts = [f"`{rule.name}` {' / '.join(f'{v:,}' for v in sorted(set(r.agreement.get(rule.name, {}).values())))}"
                  f" (planted: {r.data.expected(rule.name):,})" for rule in plan.same]
        lines += [f"Failing rows found ({verdict}): " + "; ".join(counts) + ".", ""]
    if len(results) > 1:
        lines += ["### Scaling and ratios", "",
                  "Seconds per million fills (total, load included), the slope of log(time) on log(rows) (1.0 ="
                  " linear), and how many times longer each baseline took than CEI on the same rules.", "",
                  "| engine | " + " | ".join(f"s/M at {validation._rows_label(r.rows)}" for r in results)
                  + " | slope | " + " | ".join(f"× CEI at {validation._rows_label(r.rows)}" for r in results) + " |",
                  "| --- |" + " ---: |" * (2 * len(results) + 1)]
        for engine in engines:
            pts = [(r.rows, r.median(engine, "total_s")) for r in results]
            slope = validation._slope(pts)
            per_m = " | ".join(f"{t / (n / 1e6):.2f}" for n, t in pts)
            times = " | ".join(f"{ratios(r)[engine]:.1f}×" if engine in ratios(r) else "" for r in results)
            lines.append(f"| {validation.ENGINE_LABELS[engine]} | {per_m} | "
                         f"{'n/a' if slope is None else f'{slope:.2f}'} | {times} |")
        lines.append("")
    if results:
        big = results[-1]
        rs = ratios(big)
        rows = []
        for engine, want in (("ge", validation.TARGET_VS_GE), ("pandera", validation.TARGET_VS_PANDERA)):
            if engine in rs:
                rows.append(f"| ≥ {want:.0f}× faster than {validation.ENGINE_LABELS[engine]} on the same rules, load"
                            f" included ({big.rows:,} fills) | {rs[engine]:.1f}× | {'yes' if rs[engine] >= want else '**no**'} |")
        if rows:
            lines += ["### Targets", "", "| target | measured | holds |", "| --- | ---: | :---: |", *rows, ""]
        if "cei" in big.runs:
            load = big.median("cei", "load_s")
            total = big.median("cei", "total_s")
            lines += [f"Of CEI's {total:.2f} s at {big.rows:,} fills, {load:.2f} s is the load into the warehouse"
                      f" file and {big.median('cei', 'check_s'):.2f} s the {len(plan.rules)} rules"
                      f" (checks alone on the data in the warehouse, fresh process:"
                      f" {statistics.median(m.check_s for m in big.runs['cei_checks']):.2f} s)."
                      if "cei_checks" in big.runs else "", ""]
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="comma-separated fill counts (100000 or 100k)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and size; medians are reported")
    parser.add_argument("--out", type=Path, default=validation.DEFAULT_OUT,
                        help="markdown file whose validation-executions section is replaced")
    parser.add_argument("--data-dir", type=Path, default=None, help="cache of generated landing days")
    parser.add_argument("--work-dir", type=Path, default=None, help="warehouse files and logs of the runs")
    parser.add_argument("--engines", default=",".join(validation.ENGINES),
                        help=f"subset of {','.join(validation.ENGINES)}")
    parser.add_argument("--quiet-wait", type=float, default=120.0,
                        help="before each measurement, wait up to this many seconds for other processes to go quiet")
    args = parser.parse_args(argv)
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    unknown = [e for e in engines if e not in validation.ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; choose among {', '.join(validation.ENGINES)}")
    command = (".venv/bin/python -m bench.validation_executions " + " ".join(argv)).strip()
    outcome = run_benchmark(validation.parse_sizes(args.sizes), repeat=args.repeat, out=args.out,
                            data_dir=args.data_dir, work_dir=args.work_dir, engines=engines, command=command,
                            quiet_wait_s=args.quiet_wait)
    print(f"report: {args.out} (section {START_MARKER})")
    return 1 if outcome["disagreements"] else 0


if __name__ == "__main__":
    sys.exit(main())
