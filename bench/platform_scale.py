"""Scale of the platform itself: Definitions load time and the incident sensor's tick (issue 8).

    .venv/bin/python -m bench.platform_scale [--sizes 100,1000,10000] [--storages sqlite,postgres]
                                             [--quick] [--out docs/benchmarks.md]
                                             [--png docs/benchmarks-platform-scale.png]

Funds run hundreds of pipelines, so the question is how CEI's own machinery grows with the
number of asset checks. For each size N a synthetic code location is generated (a Python
module under the work folder): pipelines of 10 assets, each asset downstream of the one
before, each asset with 10 checks (the first blocking), all partitioned by the real trading-day
partitions, owned and described like CEI's own assets, with the real ``incident_sensor``.

- **Definitions load**: a fresh Python process imports the module and resolves its repository
  (the asset graph), as a code server does; Dagster's own import is timed apart.
- **Sensor tick**: a real Dagster instance (SQLite in a temporary DAGSTER_HOME, or PostgreSQL
  in a throwaway database) holds one passing evaluation of every check for a trading date,
  recorded through the instance's event log (``report_runless_asset_event`` with
  ``AssetCheckEvaluation``, the same events a run writes). Then the sensor's evaluation
  (``sensors.check_failures.evaluate``: read, group, store, describe with the template, notify)
  runs as the daemon runs it: a first tick that reads the backlog, idle ticks (nothing new;
  the median of 5), and ticks after 100 new failures (10 checks on each of 10 assets spread over
  the graph, failing on the next trading dates; the median of 3, 1 with ``--quick``). The code
  server's modules are imported first, as in a daemon that has ticked before.
  The incident store is SQLite next to the instance, or the same PostgreSQL database.
- **Baseline**: what a sensor without an event-log cursor would do every tick, one
  ``get_asset_check_execution_history(check_key, limit=1)`` per check key; its time over the
  idle tick's is the ratio reported.

Settle time is 0 here (the default 10 s only keeps rereading the last 10 s of events).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.platform_common import NO_PLOT, load_average, pyplot, tests_module
from bench.report import machine_info, write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_PNG_NAME = "benchmarks-platform-scale.png"
START_MARKER = "<!-- platform-scale:start -->"
END_MARKER = "<!-- platform-scale:end -->"
FULL_SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (100,)
STORAGES = ("sqlite", "postgres")
CHECKS_PER_ASSET = 10
PIPELINE_LENGTH = 10
NEW_FAILURES = 100
FAILING_ASSETS = NEW_FAILURES // CHECKS_PER_ASSET
PARTITION = "2026-10-01"  # the passing evaluations
FAILED_PARTITIONS = ("2026-10-02", "2026-10-05", "2026-10-06")  # the next trading dates, when 100 checks fail
IDLE_TICKS = 5
TARGET_TICK_S = 2.0
TARGET_AT = 10_000
PACKAGES = ("dagster", "dagster-postgres", "sqlalchemy", "psycopg2-binary")

_MODULE = '''\
"""A synthetic code location of {checks} asset checks (bench/platform_scale.py wrote it)."""

import dagster as dg

from cei_assets.incidents.store import IncidentStoreResource
from cei_assets.trading_calendar import trading_day_partitions
from sensors.check_failures import incident_sensor

CHECKS = {checks}
CHECKS_PER_ASSET = {per_asset}
PIPELINE_LENGTH = {pipeline_length}
PARTITIONS = trading_day_partitions()


def table_key(index: int) -> dg.AssetKey:
    return dg.AssetKey([f"pipeline_{{index // PIPELINE_LENGTH:04d}}", f"table_{{index % PIPELINE_LENGTH}}"])


def table(index: int) -> dg.AssetsDefinition:
    key = table_key(index)
    upstream = [] if index % PIPELINE_LENGTH == 0 else [table_key(index - 1)]

    @dg.asset(
        key=key,
        deps=upstream,
        partitions_def=PARTITIONS,
        owners=["team:fund-operations"],
        metadata={{"cei/business_processes": ["EOD valuation"], "cei/criticality": "high"}},
        check_specs=[
            dg.AssetCheckSpec(f"rule_{{c}}", asset=key, blocking=c == 0, description=f"rule {{c}} of {{key.to_user_string()}}")
            for c in range(CHECKS_PER_ASSET)
        ],
    )
    def _table(context: dg.AssetExecutionContext):
        raise NotImplementedError("synthetic: never executed")

    return _table


defs = dg.Definitions(
    assets=[table(i) for i in range(CHECKS // CHECKS_PER_ASSET)],
    sensors=[incident_sensor],
    resources={{"incidents": IncidentStoreResource()}},
)
'''

_LOADER = """\
import json, sys, time
started = time.perf_counter()
import dagster
imported = time.perf_counter()
sys.path.insert(0, sys.argv[1])
module = __import__(sys.argv[2])
graph = module.defs.get_repository_def().asset_graph
done = time.perf_counter()
print(json.dumps({"dagster_import_s": imported - started, "load_s": done - imported,
                  "checks": len(graph.asset_check_keys), "assets": len(list(graph.get_all_asset_keys()))}))
"""


class BenchmarkError(RuntimeError):
    pass


def module_name(checks: int) -> str:
    return f"cei_bench_checks_{checks}"


def write_location(folder: Path, checks: int) -> str:
    """Write the synthetic code location of ``checks`` checks; its module name."""
    if checks % (CHECKS_PER_ASSET * FAILING_ASSETS):
        raise ValueError(f"the number of checks must be a multiple of {CHECKS_PER_ASSET * FAILING_ASSETS}")
    name = module_name(checks)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(_MODULE.format(checks=checks, per_asset=CHECKS_PER_ASSET,
                                                      pipeline_length=PIPELINE_LENGTH))
    return name


def time_load(folder: Path, name: str, repeat: int) -> dict:
    """Definitions load in fresh processes: the median of ``repeat`` loads."""
    loads = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", _LOADER, str(folder), name], cwd=REPO_ROOT,
                              capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        if done.returncode != 0:
            raise BenchmarkError(f"loading {name} failed:\n{done.stderr[-3000:]}")
        loads.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "load_s": statistics.median(l["load_s"] for l in loads),
        "dagster_import_s": statistics.median(l["dagster_import_s"] for l in loads),
        "checks": loads[0]["checks"],
        "assets": loads[0]["assets"],
    }


# ------------------------------------------------------------------------------- instances


@contextlib.contextmanager
def instance_and_store(storage: str, work: Path):
    """A real Dagster instance of ``storage`` and the incident store's URL beside it."""
    import dagster as dg

    home = Path(tempfile.mkdtemp(prefix=f"{storage}-", dir=work))
    if storage == "sqlite":
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance, f"sqlite:///{home / 'incidents.db'}"
        return
    throwaway = tests_module("throwaway_postgres")
    if throwaway.admin_user() is None:
        raise BenchmarkError("no PostgreSQL server on 127.0.0.1:5432")
    with throwaway.throwaway_database("cei_bench_scale") as pg:
        (home / "dagster.yaml").write_text(
            "storage:\n  postgres:\n    postgres_db:\n"
            f"      hostname: {pg['CEI_PG_HOST']}\n      port: {pg['CEI_PG_PORT']}\n"
            f"      db_name: {pg['CEI_PG_DATABASE']}\n      username: {pg['CEI_PG_USER']}\n"
            "      password: ''\n      scheme: postgresql+psycopg2\n"
            "telemetry:\n  enabled: false\n"
        )
        url = (f"postgresql+psycopg2://{pg['CEI_PG_USER']}@{pg['CEI_PG_HOST']}:{pg['CEI_PG_PORT']}/"
               f"{pg['CEI_PG_DATABASE']}")
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            yield instance, url
        finally:
            instance.dispose()  # its connections go before the database is dropped


def record_evaluations(instance, check_keys, *, passed: bool, partition: str = PARTITION, writers: int = 1) -> float:
    """One evaluation per check key for ``partition``, through the instance's event log; the seconds."""
    import dagster as dg

    def report(key) -> None:
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=key.asset_key, check_name=key.name, passed=passed, partition=partition,
            blocking=key.name == "rule_0",
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if passed else f"{key.name}: 12 of 4,000 rows break the rule",
            metadata={"failing_rows": 0 if passed else 12, "rows": 4000},
        ))

    started = time.perf_counter()
    if writers > 1:  # PostgreSQL takes concurrent writers, as from several runs at once
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(report, check_keys))
    else:
        for key in check_keys:
            report(key)
    return time.perf_counter() - started


def failing_check_keys(asset_graph) -> list:
    """10 checks on each of 10 assets spread evenly over the graph: 100 new failures."""
    by_asset: dict = {}
    for key in sorted(asset_graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        by_asset.setdefault(key.asset_key, []).append(key)
    assets = sorted(by_asset, key=lambda a: a.to_user_string())
    step = max(1, len(assets) // FAILING_ASSETS)
    chosen = [assets[i * step] for i in range(FAILING_ASSETS)]
    return [key for asset in chosen for key in by_asset[asset]]


def tick(instance, repository_def, incidents, cursor: str | None):
    """One evaluation of the incident sensor, as the daemon runs it; (result, seconds)."""
    import dagster as dg

    from sensors.check_failures import evaluate

    context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repository_def)
    with contextlib.redirect_stdout(io.StringIO()):  # alerts without Slack are echoed: not measured output
        started = time.perf_counter()
        result = evaluate(context, incidents)
        seconds = time.perf_counter() - started
    return result, seconds


def naive_scan(instance, check_keys) -> tuple[float, int]:
    """The baseline: the latest execution of every check, one query per check key."""
    storage = instance.event_log_storage
    started = time.perf_counter()
    found = 0
    for key in check_keys:
        found += len(storage.get_asset_check_execution_history(key, limit=1))
    return time.perf_counter() - started, found


@dataclasses.dataclass
class TickMeasurement:
    checks: int
    storage: str
    record_s: float  # writing the N passing evaluations (not the figure: set-up)
    first_tick_s: float
    first_events: int
    idle_ticks_s: list[float]
    idle_events: int  # read by all idle ticks together
    failure_ticks_s: list[float]
    failure_events: list[int]  # per failure tick
    failures_new: list[int]  # per failure tick
    incidents: int
    naive_s: float
    naive_found: int

    @property
    def idle_tick_s(self) -> float:
        return statistics.median(self.idle_ticks_s)

    @property
    def failure_tick_s(self) -> float:
        return statistics.median(self.failure_ticks_s)

    @property
    def naive_ratio(self) -> float:
        return self.naive_s / self.idle_tick_s

    @property
    def naive_failure_ratio(self) -> float:
        return self.naive_s / self.failure_tick_s


def measure_ticks(checks: int, storage: str, folder: Path, name: str, work: Path, *, failure_ticks: int = 3,
                  log=print) -> TickMeasurement:
    import importlib

    from cei_assets.incidents.store import IncidentStore, IncidentStoreResource

    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    repository_def = importlib.import_module(name).defs.get_repository_def()
    graph = repository_def.asset_graph
    keys = sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
    with instance_and_store(storage, work) as (instance, url):
        incidents = IncidentStoreResource(url=url, settle_seconds=0.0)
        # Set-up, not a figure: the backlog of passing evaluations (SQLite takes one writer).
        record_s = record_evaluations(instance, keys, passed=True, writers=4 if storage == "postgres" else 1)
        log(f"  {storage}, {checks:,} checks: recorded {len(keys):,} evaluations in {record_s:.1f} s")
        first, first_s = tick(instance, repository_def, incidents, None)
        cursor, idle_s, idle_events = first.cursor, [], 0
        for _ in range(IDLE_TICKS):
            idle, seconds = tick(instance, repository_def, incidents, cursor)
            cursor, idle_events = idle.cursor, idle_events + idle.events_read
            idle_s.append(seconds)
        failed_s, failed_events, failed_new = [], [], []
        for partition in FAILED_PARTITIONS[:failure_ticks]:
            record_evaluations(instance, failing_check_keys(graph), passed=False, partition=partition)
            failed, seconds = tick(instance, repository_def, incidents, cursor)
            cursor = failed.cursor
            failed_s.append(seconds)
            failed_events.append(failed.events_read)
            failed_new.append(failed.failures_new)
        naive_s, found = naive_scan(instance, keys)
        store = IncidentStore(url)
        opened = len(store.list_incidents())
        store.engine.dispose()
    if set(failed_new) != {NEW_FAILURES}:
        raise BenchmarkError(f"the failure ticks saw {failed_new} new failures, not {NEW_FAILURES} each")
    return TickMeasurement(
        checks=checks, storage=storage, record_s=record_s,
        first_tick_s=first_s, first_events=first.events_read,
        idle_ticks_s=idle_s, idle_events=idle_events,
        failure_ticks_s=failed_s, failure_events=failed_events,
        failures_new=failed_new, incidents=opened, naive_s=naive_s, naive_found=found,
    )


# ------------------------------------------------------------------------------- the report


def run_benchmark(sizes=FULL_SIZES, storages=STORAGES, *, repeat: int = 3, failure_ticks: int = 3,
                  out: Path | None = DEFAULT_OUT, png: Path | None = None, work_dir: Path | None = None,
                  log=print) -> dict:
    load_before = load_average()
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="cei-platform-scale-", dir=work_dir))
    folder = work / "locations"
    loads, ticks, notes = {}, [], []
    saved_key = os.environ.pop("ANTHROPIC_API_KEY", None)  # the template words the reports: no LLM in a tick
    saved_home = os.environ.get("CEI_HOME")
    os.environ["CEI_HOME"] = str(work / "cei_home")  # alerts without Slack go to files here
    # What a code server has imported after its first tick that described an incident.
    import cei_assets.incidents.compose  # noqa: F401
    import cei_assets.notifications.dispatch  # noqa: F401
    try:
        for checks in sizes:
            name = write_location(folder, checks)
            loads[checks] = time_load(folder, name, repeat)
            log(f"  {checks:,} checks: Definitions load {loads[checks]['load_s']:.2f} s")
            for storage in storages:
                try:
                    ticks.append(measure_ticks(checks, storage, folder, name, work, failure_ticks=failure_ticks,
                                               log=log))
                except BenchmarkError as error:
                    if storage != "postgres" or "no PostgreSQL server" not in str(error):
                        raise
                    notes.append(f"PostgreSQL not measured: {error}.")
                    storages = tuple(s for s in storages if s != "postgres")
    finally:
        if saved_key is not None:
            os.environ["ANTHROPIC_API_KEY"] = saved_key
        if saved_home is None:
            os.environ.pop("CEI_HOME", None)
        else:
            os.environ["CEI_HOME"] = saved_home
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    summary = summarise(loads, ticks)
    summary["elapsed_s"] = round(elapsed, 1)
    if png is not None:
        if plot(loads, ticks, Path(png)):
            notes.append(f"![Definitions load and sensor tick by number of checks]({Path(png).name})")
        else:
            notes.append(NO_PLOT)
    report = render_report(loads, ticks, summary, notes=notes, load=(load_before, load_average()),
                           machine=machine_info(PACKAGES), elapsed_s=elapsed)
    if out is not None:
        write_section(Path(out), report)
    return {"loads": loads, "ticks": ticks, "summary": summary, "report": report}


def summarise(loads: dict, ticks: list[TickMeasurement]) -> dict:
    largest = max(loads) if loads else None
    at_target = [t for t in ticks if t.checks == largest]
    worst = max((max(t.first_tick_s, t.idle_tick_s, t.failure_tick_s) for t in at_target), default=None)
    return {
        "largest_checks": largest,
        "load_s_at_largest": round(loads[largest]["load_s"], 2) if largest else None,
        "worst_tick_s_at_largest": round(worst, 3) if worst is not None else None,
        "target": f"a sensor tick under {TARGET_TICK_S:g} s at {TARGET_AT:,} checks",
        "target_met": (worst is not None and worst < TARGET_TICK_S) if largest == TARGET_AT else None,
        "naive_over_idle_tick": {f"{t.storage}/{t.checks}": round(t.naive_ratio, 1) for t in ticks},
    }


def _s(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def render_report(loads, ticks, summary, *, notes, load, machine, elapsed_s) -> str:
    lines = [
        START_MARKER,
        "## Scale of the platform: Definitions load and the incident sensor's tick",
        "",
        "Written by `.venv/bin/python -m bench.platform_scale` (see its docstring for the method). A "
        f"synthetic code location of N asset checks: pipelines of {PIPELINE_LENGTH} daily-partitioned assets "
        f"with {CHECKS_PER_ASSET} checks each, and the real incident sensor. Target: "
        f"{summary['target']}.",
        "",
        "### Definitions load (fresh process, median)",
        "",
        "| checks | assets | Definitions load s | Dagster import s |",
        "|---:|---:|---:|---:|",
    ]
    for checks, l in sorted(loads.items()):
        lines.append(f"| {checks:,} | {l['assets']:,} | {_s(l['load_s'])} | {_s(l['dagster_import_s'])} |")
    lines += [
        "",
        "### Incident sensor tick",
        "",
        "One passing evaluation per check is in the event log. *first*: the tick that reads that backlog; "
        f"*idle*: the next ticks, nothing new (median of {IDLE_TICKS}); *{NEW_FAILURES} failures*: a tick after "
        f"{NEW_FAILURES} failed evaluations of a next date ({CHECKS_PER_ASSET} checks on each of {FAILING_ASSETS} "
        "assets), grouped, stored, described by the template and notified (median over "
        f"{len(ticks[0].failure_ticks_s) if ticks else 0} such dates; *incidents* counts them all). *Naive*: one "
        "`get_asset_check_execution_history` per "
        "check key, what a sensor without a cursor does every tick; the ratio is naive over idle tick.",
        "",
        f"| checks | storage | first tick s (events) | idle tick s | {NEW_FAILURES} failures tick s | "
        "incidents | naive scan s | naive / idle | naive / failures tick |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in sorted(ticks, key=lambda t: (t.checks, t.storage)):
        lines.append(
            f"| {t.checks:,} | {t.storage} | {_s(t.first_tick_s)} ({t.first_events:,}) | {_s(t.idle_tick_s)} | "
            f"{_s(t.failure_tick_s)} | {t.incidents} | {_s(t.naive_s)} | {t.naive_ratio:.0f}x | "
            f"{t.naive_failure_ratio:.1f}x |"
        )
    met = summary["target_met"]
    lines += [
        "",
        f"Target ({summary['target']}): "
        + ("not measured at that size." if met is None else
           f"{'met' if met else 'NOT met'}, worst tick {summary['worst_tick_s_at_largest']} s (first, idle or "
           "failures)."),
    ]
    lines += [f"\n{note}" for note in notes]
    lines += [
        "",
        f"Machine: {machine['cpu']}, {machine['nproc']} cores, {machine['ram']} RAM, {machine['os']}, "
        f"Python {machine['python']}, dagster {machine.get('dagster')}. Load average before {load[0]}, "
        f"after {load[1]}. The whole benchmark took {elapsed_s:.0f} s.",
        END_MARKER,
        "",
    ]
    return "\n".join(lines)


def plot(loads: dict, ticks: list[TickMeasurement], png: Path) -> bool:
    """Seconds by number of checks, log-log: the load, each storage's ticks and the baseline."""
    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = sorted(loads)
    ax.plot(sizes, [loads[n]["load_s"] for n in sizes], "k-o", label="Definitions load")
    styles = {"sqlite": "-", "postgres": "--"}
    for storage in sorted({t.storage for t in ticks}):
        mine = sorted((t for t in ticks if t.storage == storage), key=lambda t: t.checks)
        n = [t.checks for t in mine]
        style = styles.get(storage, ":")
        ax.plot(n, [t.idle_tick_s for t in mine], style, marker="o", color="tab:green", label=f"idle tick ({storage})")
        ax.plot(n, [t.failure_tick_s for t in mine], style, marker="s", color="tab:blue",
                label=f"tick with {NEW_FAILURES} failures ({storage})")
        ax.plot(n, [t.naive_s for t in mine], style, marker="x", color="tab:red", label=f"per-check baseline ({storage})")
    ax.axhline(TARGET_TICK_S, color="grey", linewidth=0.8, linestyle=":", label=f"target tick {TARGET_TICK_S:g} s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("asset checks")
    ax.set_ylabel("seconds")
    ax.set_title("CEI platform scale")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None, help="comma-separated check counts (100,1000,10000)")
    parser.add_argument("--storages", default=",".join(STORAGES), help="sqlite, postgres or both")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZES[0]} checks only, one load")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file whose section is replaced")
    parser.add_argument("--png", type=Path, default=None,
                        help=f"the plot (default: {DEFAULT_PNG_NAME} next to --out)")
    parser.add_argument("--work-dir", type=Path, default=None, help="kept: the generated locations and instances")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        sizes = tuple(int(s.replace("_", "").replace(",", "")) for s in args.sizes.split(",") if s.strip())
    storages = tuple(s.strip() for s in args.storages.split(",") if s.strip())
    unknown = set(storages) - set(STORAGES)
    if unknown:
        parser.error(f"unknown storage(s): {', '.join(sorted(unknown))}")
    png = args.png or args.out.parent / DEFAULT_PNG_NAME
    outcome = run_benchmark(sizes, storages, repeat=1 if args.quick else 3, failure_ticks=1 if args.quick else 3,
                            out=args.out, png=png, work_dir=args.work_dir)
    print(outcome["report"])
    print(json.dumps(outcome["summary"], indent=2))
    return outcome["summary"]


if __name__ == "__main__":
    main()
