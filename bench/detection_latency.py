"""Detection latency: a failed check's evaluation to its stored incident and its Slack alert (issue 8).

    .venv/bin/python -m bench.detection_latency [--runs 5] [--interval 30] [--quick] [--out docs/benchmarks.md]
                                                [--png docs/benchmarks-detection-latency.png]

Everything is real but the far ends: a ``dagster-daemon`` on a temporary DAGSTER_HOME runs
the incident sensor of a small code location (``tests/incident_location.py``: a books chain
with blocking and warning checks, the real ``incident_sensor``) every
``CEI_INCIDENT_SENSOR_INTERVAL`` seconds (the default, 15; 2 with ``--quick``); alerts go
through the official ``slack_sdk`` to the local Slack server of the tests
(``tests/fake_slack.py``), which records when each message arrived. No LLM key: the template
writes the reports.

A warm-up run (its incident and alert not counted) shows the daemon and its code server are
up. Then each measured run starts at a random moment of the sensor's cycle (seeded), as
failures do, and its blocking check on ``marks`` fails. For each run:

- **to store**: the check's evaluation event (its timestamp in Dagster's event log) to the
  incident's ``opened_at`` in the incident store;
- **to Slack**: the same evaluation to the arrival of the alert at the Slack server.

The alert policy is the shipped one without quiet hours and suppression (so every incident
posts at once whatever the hour, each a new message): those hold alerts on purpose.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.platform_common import NO_PLOT, TESTS_DIR, load_average, pyplot, tests_module
from bench.report import machine_info, write_section
from sensors.check_failures import DEFAULT_INTERVAL_SECONDS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_PNG_NAME = "benchmarks-detection-latency.png"
START_MARKER = "<!-- detection-latency:start -->"
END_MARKER = "<!-- detection-latency:end -->"
FULL_RUNS, QUICK_RUNS = 5, 2
FULL_INTERVAL_S, QUICK_INTERVAL_S = DEFAULT_INTERVAL_SECONDS, 2
SETTLE_SECONDS = 10  # the incident store resource's default
TARGET_S = 30.0
FAULT = "bad_marks"
FIRST_DATE = "2026-01-05"
SEED = 8
PACKAGES = ("dagster", "slack_sdk")
# The failing runs fail on purpose: their console log would only bury the measurements.
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class BenchmarkError(RuntimeError):
    pass


def alert_policy(path: Path) -> Path:
    """The shipped alert policy without quiet hours and suppression."""
    import yaml

    from cei_assets.notifications import config as notifications_config

    shipped = Path(notifications_config.__file__).with_name("config") / "notifications.yaml"
    policy = yaml.safe_load(shipped.read_text())
    policy.pop("quiet_hours", None)
    policy["suppression"] = {"default": 0, "teams": {}, "checks": {}}
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


@dataclasses.dataclass
class Detection:
    partition: str
    offset_s: float  # seconds after the previous alert the run was started (random: a moment of the cycle)
    evaluated_at: float
    stored_at: float
    slack_at: float

    @property
    def to_store_s(self) -> float:
        return self.stored_at - self.evaluated_at

    @property
    def to_slack_s(self) -> float:
        return self.slack_at - self.evaluated_at


def _partition(index: int) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(FIRST_DATE) + dt.timedelta(days=index)).isoformat()


def measure(runs: int, interval_s: int, work: Path, log=print) -> list[Detection]:
    import dagster as dg

    from cei_assets.incidents.store import IncidentStore

    location = tests_module("incident_location")
    fake_slack = tests_module("fake_slack")
    home = work / "cei_home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (work / "workspace.yaml").write_text(
        "load_from:\n  - python_module:\n      module_name: incident_location\n"
        f"      working_directory: {TESTS_DIR}\n"
    )
    url = f"sqlite:///{home / 'incidents.db'}"
    slack = fake_slack.FakeSlack().start()
    # time.monotonic() of the Slack server's arrivals, as wall-clock seconds like Dagster's timestamps.
    wall_offset = time.time() - time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CEI_", "DAGSTER_"))}
    env.update({
        "CEI_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "CEI_INCIDENTS_URL": url,
        "CEI_INCIDENT_SENSOR_INTERVAL": str(interval_s), "CEI_TEST_SETTLE_SECONDS": str(SETTLE_SECONDS),
        "CEI_SLACK_BOT_TOKEN": slack.token, "CEI_SLACK_API_URL": slack.api_url,
        "CEI_NOTIFICATIONS_FILE": str(alert_policy(work / "notifications.yaml")),
    })
    services = tests_module("services")
    daemon = services.Daemon(work, env)
    store = IncidentStore(url)
    rng = random.Random(SEED)
    detections = []

    def incident_of(partition: str):
        try:
            return next((i for i in store.list_incidents() if partition in i.partitions), None)
        except Exception:  # the store's tables do not exist before the sensor's first tick
            return None

    def alert_of(partition: str):
        return next((r for r in slack.calls("chat.postMessage") if partition in r.block_text()), None)

    try:
        daemon.start()
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            for index in range(runs + 1):
                partition = _partition(index)
                offset = 0.0 if index == 0 else rng.uniform(0, interval_s)
                time.sleep(offset)
                result = dg.execute_job(dg.reconstructable(location.daily_job), instance=instance, raise_on_error=False,
                                        tags={location.FAULT_TAG: FAULT, "dagster/partition": partition},
                                        run_config=QUIET_RUN)
                if result.success:
                    raise BenchmarkError(f"the run with fault {FAULT} succeeded")
                timeout = 240 if index == 0 else 3 * interval_s + 120  # generous: a loaded CI machine
                incident = services.wait_for(f"the incident of {partition}", lambda: incident_of(partition), daemon, timeout, poll_s=0.1)
                alert = services.wait_for(f"the Slack alert of {partition}", lambda: alert_of(partition), daemon, timeout, poll_s=0.1)
                if index == 0:
                    log("  warm-up: daemon and code server up, first alert received")
                    continue
                (stored,) = [f for f in incident.failures if f.failure.partition == partition]
                detection = Detection(partition=partition, offset_s=offset, evaluated_at=stored.failure.evaluated_at,
                                      stored_at=incident.opened_at, slack_at=alert.at + wall_offset)
                detections.append(detection)
                log(f"  {partition}: stored after {detection.to_store_s:.1f} s, Slack after {detection.to_slack_s:.1f} s")
    finally:
        daemon.stop()
        slack.stop()
        store.engine.dispose()
    return detections


def run_benchmark(runs: int = FULL_RUNS, interval_s: int = FULL_INTERVAL_S, *, out: Path | None = DEFAULT_OUT,
                  png: Path | None = None, work_dir: Path | None = None, log=print) -> dict:
    load_before = load_average()
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="cei-detection-latency-", dir=work_dir))
    try:
        detections = measure(runs, interval_s, work, log=log)
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    summary = summarise(detections, interval_s)
    summary["elapsed_s"] = round(elapsed, 1)
    figure = None
    if png is not None:
        figure = (f"![Failed check to stored incident and to Slack, per run]({Path(png).name})"
                  if plot(detections, interval_s, Path(png)) else NO_PLOT)
    report = render_report(detections, summary, figure=figure, interval_s=interval_s, load=(load_before, load_average()),
                           machine=machine_info(PACKAGES), elapsed_s=elapsed)
    if out is not None:
        write_section(Path(out), report)
    return {"detections": detections, "summary": summary, "report": report}


def summarise(detections: list[Detection], interval_s: int) -> dict:
    store = [d.to_store_s for d in detections]
    slack = [d.to_slack_s for d in detections]
    return {
        "interval_s": interval_s,
        "runs": len(detections),
        "to_store_median_s": round(statistics.median(store), 2),
        "to_store_max_s": round(max(store), 2),
        "to_slack_median_s": round(statistics.median(slack), 2),
        "to_slack_max_s": round(max(slack), 2),
        "target": f"failed check to stored incident under {TARGET_S:g} s with the default sensor interval "
                  f"({FULL_INTERVAL_S} s)",
        "target_met": (max(store) < TARGET_S) if interval_s == FULL_INTERVAL_S else None,
    }


def render_report(detections, summary, *, figure=None, interval_s, load, machine, elapsed_s) -> str:
    lines = [
        START_MARKER,
        "## Detection latency: failed check to stored incident and to Slack",
        "",
        "Written by `.venv/bin/python -m bench.detection_latency` (method in its docstring). A real "
        f"`dagster-daemon` ticks the incident sensor every {interval_s} s; each run fails the blocking check on "
        "`marks`, started at a random moment of the sensor's cycle; the alert goes through `slack_sdk` to the "
        f"local Slack server. Target: {summary['target']}.",
        "",
        "| run (partition) | started s after the previous alert | evaluation to stored incident s | evaluation to Slack s |",
        "|---|---:|---:|---:|",
    ]
    for d in detections:
        lines.append(f"| {d.partition} | {d.offset_s:.1f} | {d.to_store_s:.2f} | {d.to_slack_s:.2f} |")
    lines += [
        f"| **median** | | **{summary['to_store_median_s']:.2f}** | **{summary['to_slack_median_s']:.2f}** |",
        f"| **max** | | **{summary['to_store_max_s']:.2f}** | **{summary['to_slack_max_s']:.2f}** |",
        "",
        f"Target ({summary['target']}): "
        + ("not measured at the default interval." if summary["target_met"] is None else
           f"{'met' if summary['target_met'] else 'NOT met'}, worst {summary['to_store_max_s']:.1f} s."),
        "The latency is the wait for the next tick (up to the interval) plus the tick itself; the alert "
        "follows in the same tick.",
        *(["", figure] if figure else []),
        "",
        f"Machine: {machine['cpu']}, {machine['nproc']} cores, {machine['ram']} RAM, {machine['os']}, "
        f"Python {machine['python']}, dagster {machine.get('dagster')}. Load average before {load[0]}, "
        f"after {load[1]}. The whole benchmark took {elapsed_s:.0f} s.",
        END_MARKER,
        "",
    ]
    return "\n".join(lines)


def plot(detections: list[Detection], interval_s: int, png: Path) -> bool:
    """Per run: seconds from the evaluation to the stored incident and to Slack, and the interval."""
    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    x = range(len(detections))
    ax.bar([i - 0.2 for i in x], [d.to_store_s for d in detections], width=0.4, label="to stored incident")
    ax.bar([i + 0.2 for i in x], [d.to_slack_s for d in detections], width=0.4, label="to Slack")
    ax.axhline(interval_s, color="grey", linestyle=":", linewidth=0.8, label=f"sensor interval {interval_s} s")
    if interval_s == FULL_INTERVAL_S:
        ax.axhline(TARGET_S, color="red", linestyle="--", linewidth=0.8, label=f"target {TARGET_S:g} s")
    ax.set_xticks(list(x), [d.partition for d in detections], fontsize=8)
    ax.set_ylabel("seconds after the check's evaluation")
    ax.set_title("CEI detection latency (real daemon)")
    top = max([interval_s, TARGET_S if interval_s == FULL_INTERVAL_S else 0, *(d.to_slack_s for d in detections)])
    ax.set_ylim(0, top * 1.4)  # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help=f"measured failing runs ({FULL_RUNS})")
    parser.add_argument("--interval", type=int, default=None,
                        help=f"CEI_INCIDENT_SENSOR_INTERVAL of the daemon, s ({FULL_INTERVAL_S}, the default)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs, a {QUICK_INTERVAL_S} s interval")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file whose section is replaced")
    parser.add_argument("--png", type=Path, default=None,
                        help=f"the plot (default: {DEFAULT_PNG_NAME} next to --out)")
    parser.add_argument("--work-dir", type=Path, default=None, help="kept: the instance, store and daemon log")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    runs = args.runs or (QUICK_RUNS if args.quick else FULL_RUNS)
    interval = args.interval or (QUICK_INTERVAL_S if args.quick else FULL_INTERVAL_S)
    outcome = run_benchmark(runs, interval, out=args.out, png=args.png or args.out.parent / DEFAULT_PNG_NAME,
                            work_dir=args.work_dir)
    print(outcome["report"])
    print(json.dumps(outcome["summary"], indent=2))
    return outcome["summary"]


if __name__ == "__main__":
    main()
