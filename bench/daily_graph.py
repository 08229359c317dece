"""The daily graph end to end for one trading date at scale (issue 8).

    .venv/bin/python -m bench.daily_graph [--sizes 1M:100k,3M:300k,10M:1M] [--quick]
                                          [--out docs/benchmarks.md] [--png docs/benchmarks-daily-graph.png]

For each size (quotes over both vendors : fills), one landing day is written by the project's
own sample-data generator (``cei_assets.sample_data.generate_landing``: reference data, opening
books, quotes, marks, FX, orders, fills, broker confirms and statements, all consistent) and
kept under ``.cei/bench/data`` (``$CEI_BENCH_DATA``); generating it is not measured. Then the
daily job runs for that date exactly as ``cei run --date`` runs it (``cei_assets.cli.run_date``:
the code location's job, the in-process executor, a Dagster instance), on a fresh ``CEI_HOME``,
in a subprocess of its own so that its peak memory is its own.

Wall time per stage comes from Dagster's own step timings (each step's ``STEP_START`` to its
``STEP_SUCCESS`` or ``STEP_FAILURE`` event in the run's event log), attributed by what the step
runs:

- **ingest**: the landing assets' steps (``landing__*``): CSV into ``raw``, with each file's
  blocking ``landing_file`` check, which is part of the load;
- **checks**: the check steps (``<table>_rules``: the SQL rules of ``asset_checks/rules``;
  ``<table>_pandera``; ``<table>_soda_contract``), and, inside the dbt step, the dbt tests on
  the staging models and the books;
- **dbt**: the rest of the one dbt step (``books_dbt_assets``, one ``dbt build``): the staging
  and books models, and dbt's own start-up (process, manifest, connection);
- **reconciliation**: inside the dbt step, the ``reconciliation`` models (``recon_*``) and the
  dbt tests on them (the blocking breaks);
- **Dagster**: the end-to-end wall time outside every step (creating and planning the run, event
  storage, starting and finishing steps).

The dbt step is split with dbt's own node timings (``run_results.json`` of that invocation:
each node's compile start to execute end). dbt runs two threads, so nodes overlap: every
instant the step's nodes are running is shared equally by the nodes running then; what no
node covers is dbt's start-up and goes to **dbt**.

Peak memory: the run process's ``VmHWM`` (Dagster, the ingest and the checks run in it), and
the peak of the whole process tree (that process plus dbt's subprocess), sampled every 100 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.report import machine_info, write_section
from bench.validation import _cpu_seconds, parse_sizes, run_worker, wait_until_quiet

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_PNG_NAME = "benchmarks-daily-graph.png"
START_MARKER = "<!-- daily-graph:start -->"
END_MARKER = "<!-- daily-graph:end -->"

BUSINESS_DATE = dt.date(2026, 1, 15)  # a Thursday: every exchange of the generator is open
DEFAULT_SIZES = ((1_000_000, 100_000), (3_000_000, 300_000), (10_000_000, 1_000_000))
QUICK_SIZES = ((4_000, 200),)
SYMBOLS = 500
SEED = 20260115
# The generator splits an order into 1-4 fills (fewer when it is one lot): 2.5 per order on average.
FILLS_PER_ORDER = 2.5
DATA_VERSION = 1
STAGES = ("ingest", "checks", "dbt", "reconciliation", "Dagster")
TARGET_S = 60.0  # issue 8: 10 million quotes and 1 million fills end to end
TARGET_QUOTES, TARGET_FILLS = 10_000_000, 1_000_000


class BenchmarkError(RuntimeError):
    pass


# =============================================================================== the data


@dataclasses.dataclass
class LandingDay:
    landing_root: Path
    business_date: dt.date
    quotes: int  # rows over every vendor
    fills: int
    orders: int
    symbols: int
    bytes: int
    generated_seconds: float
    reused: bool


def symbols_for(quotes: int) -> int:
    """500 securities at scale; fewer for a small day, so that each still gets quotes through its session."""
    from cei_assets.sample_data.generator import MIN_SYMBOLS

    return max(MIN_SYMBOLS, min(SYMBOLS, quotes // 400))


def landing_day(quotes: int, fills: int, *, cache_dir: Path | None = None) -> LandingDay:
    """A landing root with one trading date of about ``quotes`` quotes and ``fills`` fills, cached."""
    from bench.quotes_data import default_cache_dir
    from cei_assets.sample_data import generate_landing

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    symbols = symbols_for(quotes)
    arguments = {"start": BUSINESS_DATE, "days": 1, "seed": SEED, "symbols": symbols,
                 "quotes_per_symbol": max(2, round(quotes / (2 * symbols))),
                 "orders_per_day": max(1, round(fills / FILLS_PER_ORDER))}
    root = cache_dir / f"daily-{quotes}q-{fills}f-{symbols}sym-s{SEED}-v{DATA_VERSION}"
    manifest_path = root / "_bench.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("arguments") == json.loads(json.dumps(arguments, default=str)):
            return _day_from(root, manifest, reused=True)
    building = cache_dir / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary = generate_landing(building, **arguments)
    manifest = {
        "arguments": json.loads(json.dumps(arguments, default=str)), "quotes": summary.quote_rows,
        "fills": summary.execution_rows, "orders": summary.order_rows,
        "bytes": sum(p.stat().st_size for p in building.rglob("*.csv")),
        "generated_seconds": round(time.perf_counter() - started, 3),
    }
    (building / "_bench.json").write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    return _day_from(root, manifest, reused=False)


def _day_from(root: Path, manifest: dict, reused: bool) -> LandingDay:
    return LandingDay(root, dt.date.fromisoformat(manifest["arguments"]["start"]), manifest["quotes"],
                      manifest["fills"], manifest["orders"], manifest["arguments"]["symbols"], manifest["bytes"],
                      manifest["generated_seconds"], reused)


# =============================================================================== the run (worker)


class TreeMemory:
    """Peak resident memory of this process and its descendants together, sampled."""

    def __init__(self, interval_s: float = 0.1):
        self.interval_s = interval_s
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-tree-memory", daemon=True)

    @staticmethod
    def _tree_rss_kib(root: int) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry)
            parents[pid] = int(fields[1])
            rss[pid] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        total = 0
        for pid in rss:
            p = pid
            while p and p != root:
                p = parents.get(p, 0)
            if p == root:
                total += rss[pid]
        return total

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval_s):
            self.peak_mib = max(self.peak_mib, self._tree_rss_kib(me) / 1024)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _stage_of_step(step_key: str) -> str:
    if step_key.startswith("landing__"):
        return "ingest"
    if step_key.endswith(("_rules", "_pandera", "_soda_contract")):
        return "checks"
    if step_key == "books_dbt_assets":
        return "dbt"
    return "other steps"


def _utc_seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def dbt_node_stage(node: dict, nodes: dict) -> str:
    """Where a dbt node's time goes: reconciliation models and their tests, tests elsewhere, models."""
    def is_recon(n: dict) -> bool:
        return "reconciliation" in (n.get("fqn") or [])

    if node.get("resource_type") == "test":
        attached = node.get("attached_node")
        parents = [attached] if attached else [p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes]
        return "reconciliation" if any(is_recon(nodes.get(p, {})) for p in parents) else "checks"
    return "reconciliation" if is_recon(node) else "dbt"


def split_shared_time(intervals: list[tuple[float, float, str]]) -> tuple[dict[str, float], float]:
    """Seconds per label of overlapping intervals, each instant shared by the intervals covering it;
    and the time any interval covers."""
    edges = sorted({t for start, end, _ in intervals for t in (start, end)})
    shares: dict[str, float] = {}
    covered = 0.0
    for left, right in zip(edges, edges[1:]):
        active = [label for start, end, label in intervals if start <= left and end >= right]
        if not active:
            continue
        covered += right - left
        for label in active:
            shares[label] = shares.get(label, 0.0) + (right - left) / len(active)
    return shares, covered


def split_dbt_step(run_id: str, step_s: float, target_root: Path) -> dict:
    """The dbt step's seconds per stage, from dbt's node timings of this run's invocation."""
    candidates = sorted(target_root.glob(f"books_dbt_assets-{run_id[:7]}-*/run_results.json"),
                        key=lambda p: p.stat().st_mtime)
    if not candidates:
        return {"stages": {"dbt": step_s}, "nodes": [], "note": "run_results.json not found: all of it counted as dbt"}
    folder = candidates[-1].parent
    results = json.loads((folder / "run_results.json").read_text())
    nodes = json.loads((folder / "manifest.json").read_text())["nodes"]
    intervals, per_node = [], []
    for result in results["results"]:
        timing = {t["name"]: t for t in result.get("timing", [])}
        if not timing:
            continue
        start = _utc_seconds(min(t["started_at"] for t in timing.values()))
        end = _utc_seconds(max(t["completed_at"] for t in timing.values()))
        stage = dbt_node_stage(nodes.get(result["unique_id"], {}), nodes)
        intervals.append((start, end, stage))
        per_node.append({"node": result["unique_id"], "stage": stage, "seconds": round(end - start, 3)})
    shares, covered = split_shared_time(intervals)
    shares["dbt"] = shares.get("dbt", 0.0) + max(0.0, step_s - covered)  # start-up: process, manifest, connection
    return {"stages": shares, "nodes": per_node, "dbt_elapsed_s": results.get("elapsed_time"),
            "startup_s": max(0.0, step_s - covered)}


def read_run(instance, run_id: str, target_root: Path) -> dict:
    """Step timings of a finished run from its event log, and the seconds per stage."""
    from dagster import DagsterEventType as Event

    steps: dict[str, dict] = {}
    run_start = run_end = None
    rows, load_s = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == Event.RUN_START:
            run_start = entry.timestamp
        elif kind in (Event.RUN_SUCCESS, Event.RUN_FAILURE):
            run_end = entry.timestamp
        elif kind == Event.STEP_START:
            steps.setdefault(event.step_key, {})["start"] = entry.timestamp
        elif kind in (Event.STEP_SUCCESS, Event.STEP_FAILURE):
            steps.setdefault(event.step_key, {}).update(end=entry.timestamp, status=kind.value)
        elif kind == Event.ASSET_MATERIALIZATION and event.step_key and event.step_key.startswith("landing__"):
            metadata = event.event_specific_data.materialization.metadata
            if "dagster/row_count" in metadata:
                rows[event.asset_key.to_user_string()] = int(metadata["dagster/row_count"].value)
            if "load_seconds" in metadata:  # load_dataset's own time, inside the step
                load_s[event.step_key] = float(metadata["load_seconds"].value)
    timed = [{"step": key, "seconds": s["end"] - s["start"], "stage": _stage_of_step(key), "status": s.get("status"),
              "load_s": load_s.get(key)}
             for key, s in steps.items() if "start" in s and "end" in s]
    stages = {stage: 0.0 for stage in STAGES}
    dbt_split = None
    for step in timed:
        if step["step"] == "books_dbt_assets":
            dbt_split = split_dbt_step(run_id, step["seconds"], target_root)
            for stage, seconds in dbt_split["stages"].items():
                stages[stage] = stages.get(stage, 0.0) + seconds
        else:
            stages[step["stage"]] = stages.get(step["stage"], 0.0) + step["seconds"]
    run_s = (run_end - run_start) if run_start and run_end else None
    return {"run_s": run_s, "steps_s": sum(s["seconds"] for s in timed), "steps": sorted(timed, key=lambda s: -s["seconds"]), "stages": stages,
            "dbt_split": dbt_split, "rows": rows}


def _worker(job: dict) -> dict:
    home = Path(job["home"])
    started_import = time.perf_counter()
    from cei_assets import settings

    settings.configure_environment()
    import dagster as dg

    import cei_assets.definitions  # noqa: F401  (the code location, loaded before the clock starts)
    from cei_assets.cli import run_date

    import_s = time.perf_counter() - started_import
    business_date = dt.date.fromisoformat(job["business_date"])
    with TreeMemory() as tree:
        started = time.perf_counter()
        ok = run_date(business_date, quiet=True)
        wall_s = time.perf_counter() - started
    instance = dg.DagsterInstance.get()
    (record,) = instance.get_run_records(limit=1)
    run = read_run(instance, record.dagster_run.run_id, Path(job["dbt_target"]))
    # Dagster's own share: run_date's wall time outside every step (creating and planning the
    # run, storing events, starting and finishing steps).
    run["stages"]["Dagster"] = max(0.0, wall_s - run["steps_s"])
    reasons = []
    if not ok:
        from cei_assets.cli import _failure_reasons

        reasons = _failure_reasons(instance, record.dagster_run.run_id)
    return {"ok_run": ok, "reasons": reasons, "wall_s": wall_s, "import_s": import_s, "run_id": record.dagster_run.run_id,
            "tree_peak_mib": tree.peak_mib, "home": str(home), **run}


def _worker_main(job_json: str) -> None:
    run_worker(job_json, _worker, profile_interval_s=0.005)


# =============================================================================== the parent


@dataclasses.dataclass
class Measurement:
    day: LandingDay
    result: dict
    process_s: float
    others_cores: float | None

    @property
    def stages(self) -> dict[str, float]:
        return self.result["stages"]

    @property
    def wall_s(self) -> float:
        return self.result["wall_s"]


def _clean_environment(home: Path, landing_root: Path) -> dict[str, str]:
    """The embedded defaults, as on a fresh machine: no other CEI or Dagster setting leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CEI_", "DAGSTER_", "PG")) and k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    env.update({"CEI_HOME": str(home), "CEI_LANDING_DIR": str(landing_root), "DO_NOT_TRACK": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))})
    return env


def run_day(day: LandingDay, work_dir: Path, profile_path: Path | None = None) -> Measurement:
    """The daily job for the day's date on a fresh CEI_HOME, in its own subprocess."""
    label = f"{day.quotes}q-{day.fills}f"
    home = work_dir / label / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    result_path = work_dir / label / "result.json"
    result_path.unlink(missing_ok=True)
    job = {"home": str(home), "business_date": day.business_date.isoformat(), "result": str(result_path),
           "dbt_target": str(REPO_ROOT / "dbt_project" / "target"),
           "profile_path": str(profile_path) if profile_path else None}
    log_path = work_dir / label / ("profile.log" if profile_path else "worker.log")
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bench.daily_graph", "--worker", json.dumps(job)],
                                cwd=REPO_ROOT, env=_clean_environment(home, day.landing_root), stdout=log,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    cpu_after = _cpu_seconds()
    others = None
    if cpu_before and cpu_after:
        own = usage.ru_utime + usage.ru_stime
        others = max(0.0, (cpu_after[0] - cpu_before[0] - own) / elapsed)
    result = json.loads(result_path.read_text()) if result_path.is_file() else {"ok": False, "error": "no result"}
    if os.waitstatus_to_exitcode(status) != 0 or not result.get("ok"):
        raise BenchmarkError(f"the daily run of {label} crashed ({result.get('error')}); log {log_path}:\n"
                             f"{log_path.read_text()[-3000:]}")
    if not result["ok_run"]:
        raise BenchmarkError(f"the daily run of {label} failed: " + "; ".join(result["reasons"][:5])
                             + f" (Dagster home {home})")
    return Measurement(day, result, elapsed, others)


def run_benchmark(sizes, *, out: Path | None = DEFAULT_OUT, png: Path | None = None, data_dir: Path | None = None,
                  work_dir: Path | None = None, quiet_wait_s: float = 0.0, profile: bool = False,
                  command: str | None = None, log=print) -> dict:
    from bench.quotes_data import default_cache_dir

    data_dir = Path(data_dir) if data_dir else default_cache_dir()
    work_dir = Path(work_dir) if work_dir else data_dir.parent / "work" / "daily-graph"
    work_dir.mkdir(parents=True, exist_ok=True)
    measurements: list[Measurement] = []
    for quotes, fills in sizes:
        day = landing_day(quotes, fills, cache_dir=data_dir)
        log(f"{day.quotes:,} quotes, {day.fills:,} fills, {day.orders:,} orders: {day.landing_root} "
            f"({'reused' if day.reused else f'generated in {day.generated_seconds:.1f} s'})")
        if quiet_wait_s:
            wait_until_quiet(quiet_wait_s, log=log)
        m = run_day(day, work_dir)
        measurements.append(m)
        stages = "  ".join(f"{s} {m.stages.get(s, 0.0):6.2f} s" for s in STAGES)
        log(f"  end to end {m.wall_s:6.2f} s  ({stages})  peak {m.result['peak_mib']:,.0f} MiB"
            f" (with dbt {m.result['tree_peak_mib']:,.0f} MiB)  others {m.others_cores or 0:.1f} cores")
    profile_text = None
    if profile and measurements:
        big = measurements[-1]
        path = work_dir / f"{big.day.quotes}q-{big.day.fills}f" / "profile.txt"
        run_day(big.day, work_dir, profile_path=path)
        profile_text = path
        log(f"pyinstrument profile of the largest day: {path}")
    machine = machine_info()
    png = Path(png) if png is not None else (Path(out).with_name(DEFAULT_PNG_NAME) if out is not None else None)
    report = render_report(measurements, machine, command, png, profile_text)
    if out is not None:
        write_section(Path(out), report)
    if png is not None:
        plot(measurements, png)
    summary = summarize(measurements)
    for line in summary:
        log(line)
    return {"measurements": measurements, "report": report, "summary": summary, "machine": machine}


# =============================================================================== the report


def _label(quotes: int, fills: int) -> str:
    from bench.validation import _rows_label

    return f"{_rows_label(quotes)} quotes, {_rows_label(fills)} fills"


def target(measurements: list[Measurement]) -> dict | None:
    """Issue 8's end-to-end target, judged on the day of 10M quotes and 1M fills when it ran."""
    for m in measurements:
        if m.day.quotes >= TARGET_QUOTES and m.day.fills >= TARGET_FILLS * 0.95:
            return {"measurement": m, "holds": m.wall_s < TARGET_S}
    return None


def _profile_excerpt(path: Path, limit: int = 30) -> list[str]:
    keep = ("run_date", "execute_job", "_landing_asset", "load_dataset", "_table_checks", "run_rules",
            "_pandera_check", "validate_partition", "books_dbt_assets", "stream", "soda", "verify_contract")
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [line.rstrip() for line in lines if any(k in line for k in keep)][:limit]


def render_report(measurements: list[Measurement], machine: dict, command: str | None, png: Path | None,
                  profile: Path | None = None) -> str:
    cmd = command or ".venv/bin/python -m bench.daily_graph"
    symbols = " or ".join(dict.fromkeys(f"{m.day.symbols:,}" for m in measurements)) or str(SYMBOLS)
    lines = [
        START_MARKER,
        "## The daily graph end to end (issue 8)",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `{cmd}`, one run per size."
        " Harness: `bench/daily_graph.py`.",
        "",
        "What runs: one trading date (2026-01-15) written by the project's sample-data generator"
        f" (`cei_assets/sample_data`: {symbols} securities on five exchanges, quotes from two vendors, marks, FX,"
        " orders, fills, broker confirms and statements, all consistent; cached under `.cei/bench/data`,"
        " generation not timed), then the daily job for that date exactly as `cei run --date` runs it"
        " (`cei_assets.cli.run_date`: in-process executor, DuckDB warehouse file, a fresh `CEI_HOME`), in a"
        " subprocess of its own. \"end to end\" is `run_date`'s wall time (the code location is imported"
        " before the clock starts).",
        "",
        "Stages from Dagster's step timings (`STEP_START` to `STEP_SUCCESS` in the run's event log):"
        " **ingest** = the landing steps (`landing__*`, each with its `landing_file` check); **checks** = the"
        " check steps (`<table>_rules`: the SQL rules; `<table>_pandera`; `<table>_soda_contract`) plus, inside"
        " the dbt step, the dbt tests on staging and books models; **dbt** = the rest of the one dbt step"
        " (`books_dbt_assets`, a single `dbt build`): staging and books models and dbt's start-up;"
        " **reconciliation** = inside the dbt step, the `recon_*` models and their tests (the blocking breaks);"
        " **Dagster** = the end-to-end time outside every step (creating and planning the run, storing"
        " events, starting and finishing steps), so the stages add up to the end-to-end time. The dbt step is split with dbt's own node"
        " timings (`run_results.json` of the run's invocation); dbt runs two threads, so each instant is"
        " shared equally by the nodes running then, and what no node covers (dbt's start-up) counts as dbt."
        " Peak memory: the run process's `VmHWM` (Dagster, ingest, checks), and the whole process tree with dbt's"
        " subprocess (sampled every 100 ms). \"others\" is the CPU other processes used meanwhile (cores, of"
        f" {machine['nproc']}): the machine is shared.",
        "",
        f"Machine: {machine['cpu']}, `nproc` = {machine['nproc']}, RAM {machine['ram']}; {machine['os']};"
        f" Python {machine['python']}, duckdb {machine['duckdb']}, pandas {machine['pandas']}.",
        "",
        "| day | CSV MiB | ingest s | checks s | dbt s | reconciliation s | Dagster s | end to end s |"
        " peak MiB (run process) | peak MiB (with dbt) | others |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measurements:
        s = m.stages
        lines.append(
            f"| {_label(m.day.quotes, m.day.fills)} ({m.day.orders:,} orders) | {m.day.bytes / 2**20:,.0f} | "
            + " | ".join(f"{s.get(stage, 0.0):.1f}" for stage in STAGES)
            + f" | **{m.wall_s:.1f}** | {m.result['peak_mib']:,.0f} | {m.result['tree_peak_mib']:,.0f}"
            f" | {m.others_cores or 0:.1f} |")
    lines.append("")
    t = target(measurements)
    if t is not None:
        m = t["measurement"]
        lines += [f"Target: the daily graph end to end at 10 million quotes and 1 million fills in under"
                  f" {TARGET_S:.0f} s: **{m.wall_s:.1f} s, {'holds' if t['holds'] else 'missed'}**.", ""]
    if measurements:
        big = measurements[-1]
        lines += [f"The slowest steps of the largest day ({_label(big.day.quotes, big.day.fills)}); for a landing"
                  " step, the time `load_dataset` reports for itself (its `load_seconds` metadata): the rest of the"
                  " step is mostly closing the warehouse connection, where DuckDB checkpoints what was written:", "",
                  "| step | stage | s | of which `load_dataset` s |", "| --- | --- | ---: | ---: |"]
        for step in big.result["steps"][:12]:
            inside = "" if step.get("load_s") is None else f"{step['load_s']:.2f}"
            lines.append(f"| `{step['step']}` | {step['stage']} | {step['seconds']:.2f} | {inside} |")
        split = big.result.get("dbt_split") or {}
        nodes = sorted(split.get("nodes", []), key=lambda n: -n["seconds"])[:10]
        if nodes:
            lines += ["", f"Inside the dbt step: {split.get('startup_s', 0):.1f} s outside every dbt node (the dbt"
                      " process starting, loading the project and connecting; Dagster reading its events), counted"
                      " as dbt; the slowest nodes (compile start to execute end; two threads, so they overlap):", "",
                      "| dbt node | stage | s |", "| --- | --- | ---: |"]
            lines += [f"| `{n['node']}` | {n['stage']} | {n['seconds']:.2f} |" for n in nodes]
        lines.append("")
    if profile is not None:
        excerpt = _profile_excerpt(profile)
        if excerpt:
            shown = profile.relative_to(REPO_ROOT) if profile.is_relative_to(REPO_ROOT) else profile
            lines += ["pyinstrument profile of the largest day's run process (seconds; dbt's own work is in its"
                      f" subprocess, seen here as waiting; full text in `{shown}`):", "", "```", *excerpt, "```", ""]
    if png is not None:
        lines += [f"![Seconds per stage, per day]({png.name})", ""]
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"


def plot(measurements: list[Measurement], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    labels = [_label(m.day.quotes, m.day.fills).replace(", ", "\n") for m in measurements]
    bottoms = [0.0] * len(measurements)
    colors = {"ingest": "tab:blue", "checks": "tab:orange", "dbt": "tab:green", "reconciliation": "tab:purple",
              "Dagster": "tab:gray"}
    for stage in STAGES:
        values = [m.stages.get(stage, 0.0) for m in measurements]
        ax.bar(labels, values, bottom=bottoms, label=stage, color=colors[stage])
        bottoms = [b + v for b, v in zip(bottoms, values)]
    if any(m.day.quotes >= TARGET_QUOTES for m in measurements):
        ax.axhline(TARGET_S, color="tab:red", linestyle="--", linewidth=1, label=f"target {TARGET_S:.0f} s (10M/1M)")
    ax.set_ylabel("seconds (Dagster's step timings)")
    ax.set_title("The daily graph end to end: seconds per stage")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def summarize(measurements: list[Measurement]) -> list[str]:
    lines = []
    for m in measurements:
        stages = ", ".join(f"{s} {m.stages.get(s, 0.0):.1f}" for s in STAGES)
        lines.append(f"{_label(m.day.quotes, m.day.fills)}: {m.wall_s:.1f} s end to end ({stages}); peak"
                     f" {m.result['peak_mib']:,.0f} MiB, {m.result['tree_peak_mib']:,.0f} MiB with dbt")
    t = target(measurements)
    if t is not None:
        lines.append(f"target {'OK  ' if t['holds'] else 'MISS'} 10M quotes + 1M fills end to end < {TARGET_S:.0f} s:"
                     f" {t['measurement'].wall_s:.1f} s")
    return lines


# =============================================================================== command line


def parse_day_sizes(text: str) -> list[tuple[int, int]]:
    """``1M:100k,3M:300k`` -> [(1000000, 100000), (3000000, 300000)]: quotes, then fills."""
    sizes = []
    for part in text.split(","):
        quotes, _, fills = part.partition(":")
        if not fills:
            raise ValueError(f"a size is QUOTES:FILLS, e.g. 1M:100k, not {part!r}")
        sizes.append((parse_sizes(quotes)[0], parse_sizes(fills)[0]))
    return sorted(sizes)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        _worker_main(argv[1])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(f"{q}:{f}" for q, f in DEFAULT_SIZES),
                        help="comma-separated QUOTES:FILLS days (1M:100k)")
    parser.add_argument("--quick", action="store_true", help="one tiny day (4,000 quotes, 200 fills) instead")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file whose daily-graph section is replaced")
    parser.add_argument("--png", type=Path, default=None, help=f"stacked bars (default: {DEFAULT_PNG_NAME} beside --out)")
    parser.add_argument("--data-dir", type=Path, default=None, help="cache of generated landing days")
    parser.add_argument("--work-dir", type=Path, default=None, help="CEI homes and logs of the runs")
    parser.add_argument("--quiet-wait", type=float, default=0.0,
                        help="before each run, wait up to this many seconds for other processes to go quiet")
    parser.add_argument("--profile", action="store_true", help="profile the largest day again with pyinstrument")
    args = parser.parse_args(argv)
    try:
        sizes = list(QUICK_SIZES) if args.quick else parse_day_sizes(args.sizes)
    except ValueError as error:
        parser.error(str(error))
    command = (".venv/bin/python -m bench.daily_graph " + " ".join(argv)).strip()
    outcome = run_benchmark(sizes, out=args.out, png=args.png, data_dir=args.data_dir, work_dir=args.work_dir,
                            quiet_wait_s=args.quiet_wait, profile=args.profile, command=command)
    print(f"report: {args.out} (section {START_MARKER})")
    t = target(outcome["measurements"])
    return 0 if t is None or t["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
