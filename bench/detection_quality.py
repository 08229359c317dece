"""Detection quality (issue 8): is CEI right when it shouts, and does it shout when it should?

    .venv/bin/python -m bench.detection_quality [--seeds 3] [--quick] [--jobs 2] [--out docs/benchmarks.md]

Every fault of the generator's catalogue (``cei_assets.sample_data.FAULTS``) is planted, one at a
time, in the last date of a small generated history (``SIZES``: 12 securities, 120 quotes per
security and vendor, 15 orders a day, three trading dates; the smallest day whose clean quotes
pass every rule), for each seed. Every fault is evaluated the same way, by the real daily graph:
``cei_assets.cli.run_date`` (the Dagster job: every engine, the dbt models and tests, the
reconciliation), then ``cei_assets.status.check_status`` for each check's outcome and one
``sensors.check_failures.scan`` into the home's own incident store for the incidents the date
opened. A date costs about 20 s on an idle 2-core machine, so a seed's history is run once: its
clean first dates on a base ``CEI_HOME`` (judged as clean dates too), then each fault's date on a
copy of that home (warehouse, Dagster instance, incident store and scan cursor). Worker
processes (``--jobs``, two) take several dates each, so the code location is imported once per
worker, not once per date. The clean last date runs on a copy as well.

- **Detected**: one of the fault's expected checks (``EXPECTED_CHECKS``: the checks whose rule
  tests what the fault corrupts, with the reason) failed for the fault's date; **missed**: none
  did. A fault the generator cannot plant in a seed's data (``FaultNotApplicable``) is not run.
- **False alarms**: any other failing check on a fault's date, and every failing check on a
  clean date; blocking and warning apart.
- **Real series** (``CEI_REAL_DATA``, default ``/work/shared/data/real``): the rule engine over
  every date of each series, built into warehouse tables by tests/test_real_market_data.py's own
  builders. A blocking failure is a false alarm; warnings are listed by rule (most are true great
  moves, see docs/checks.md). On the raw TAQ file the zero and crossed quotes are real defects:
  those two rules failing are detections.
- **Recall** = detected / planted; **precision** = true alarms (expected-check failures on fault
  dates, real defects caught) / (true alarms + every false alarm, blocking and warning, of the
  generated dates + the real series' blocking failures).

``--quick``: one seed, one date (no history), three faults, the TAQ series. The report is the
section of ``docs/benchmarks.md`` between the ``detection-quality`` markers; ``main`` returns the
summary (also printed as JSON). ``--work-dir`` keeps the logs and ``outcomes.json``, from which
``--from-outcomes`` rewrites the report without running again.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import machine_info, write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
START_MARKER = "<!-- detection-quality:start -->"
END_MARKER = "<!-- detection-quality:end -->"
START = dt.date(2026, 10, 1)
DAYS = 3  # the generator schedules a split on the second date and a dividend on the third
SIZES = {"symbols": 12, "quotes_per_symbol": 120, "orders_per_day": 15}  # the smallest day whose clean quotes pass
FIRST_SEED = 5
# --quick: one seed, one date (no history to build), a fault of each kind that a first date can hold.
QUICK_FAULTS = ("missing_file", "eod_mark_decimal_shift", "confirm_price_off")
REAL_DATA = Path(os.environ.get("CEI_REAL_DATA", "/work/shared/data/real"))

_QUOTES, _EOD, _FX = "landing/quotes", "landing/eod_prices", "landing/fx_rates"
_RECON = "recon_breaks"

# fault -> the checks whose rule tests what the fault corrupts, and why. Several checks when
# several rules legitimately see the same corruption (a zero mark is not positive, is far from
# the last quote and is an impossible move); the reconciliation faults' dbt tests are those of
# tests/test_reconciliation.py.
EXPECTED_CHECKS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "missing_file": ((("landing/executions", "landing_file"),), "a missing file fails its landing check"),
    "malformed_value": ((("landing/executions", "landing_file"),), "an unparsable value fails the landing check"),
    "missing_column": ((("landing/broker_trades", "landing_file"),), "a missing column fails the landing check"),
    "unreadable_encoding": ((("landing/orders", "landing_file"),), "a file that is not UTF-8 fails the landing check"),
    "null_bid": (((_QUOTES, "null_tolerance_ts_symbol_bid_ask"),), "null bids break the null tolerance"),
    "crossed_quote": (((_QUOTES, "crossed_quotes"),), "bid above ask"),
    "zero_price": (((_QUOTES, "price_range_positive"),), "a zero price is not positive"),
    "negative_price": (((_QUOTES, "price_range_positive"),), "a negative price is not positive"),
    "quote_ts_outside_date": (((_QUOTES, "timestamp_within_date_ts"),), "timestamps outside the trading date"),
    "quote_out_of_order": (((_QUOTES, "timestamp_monotonicity"),), "quotes out of time order per vendor and symbol"),
    "missing_symbol_quotes": (((_QUOTES, "every_security_quoted"),), "a security without quotes"),
    "stale_feed": (((_QUOTES, "stale_feed"),), "a feed silent for longer than allowed"),
    "decimal_shift_quotes": (((_QUOTES, "vendor_agreement"), (_QUOTES, "price_spike")),
                             "a shifted vendor disagrees with the other and jumps from its own prices"),
    "copied_price": (((_QUOTES, "vendor_agreement"), (_QUOTES, "price_spike")),
                     "another symbol's price disagrees with the other vendor and jumps"),
    "vendor_disagreement": (((_QUOTES, "vendor_agreement"),), "two vendors apart by more than the tolerance"),
    "eod_mark_missing": (((_EOD, "every_security_marked"),), "a held security without a mark"),
    "eod_mark_duplicate": (((_EOD, "unique_symbol"), (_EOD, "pandera_schema")),
                           "two marks for one security (the SQL rule; the pandera model's unique symbol)"),
    "eod_mark_zero": (((_EOD, "positive_close"), (_EOD, "pandera_schema"), (_EOD, "eod_matches_last_quote"),
                       (_EOD, "price_move_data_error")),
                      "a zero mark is not positive (the SQL rule and the pandera model's close > 0), is far from the"
                      " last quote and is an impossible move"),
    "eod_mark_decimal_shift": (((_EOD, "eod_matches_last_quote"), (_EOD, "price_move_data_error")),
                               "a shifted mark is far from the last quote and an implausible move"),
    "price_spike_unexplained": (((_EOD, "price_move_unexplained"), (_QUOTES, "price_spike")),
                                "a large move without a corporate action: a warning for a look"),
    "fx_negative_rate": (((_FX, "positive_rate"), (_FX, "pandera_schema"), (_FX, "fx_usd_legs"),
                          (_FX, "fx_cross_consistency")),
                         "a negative rate is not positive (the SQL rule and the pandera model's rate > 0) and breaks"
                         " the USD legs and crosses"),
    "fx_cross_inconsistent": (((_FX, "fx_cross_consistency"),), "a cross that disagrees with its USD legs"),
    "fx_missing_leg": (((_FX, "fx_usd_legs"), (_FX, "fx_cross_consistency")),
                       "a missing USD leg, so its crosses cannot be checked"),
    "orphan_fill": (((_RECON, "no_trade_breaks"),), "a fill without its order"),
    "overfill": (((_RECON, "no_trade_breaks"),), "fills above the order's quantity"),
    "fill_side_mismatch": (((_RECON, "no_trade_breaks"),), "a fill on the other side of its order"),
    "fill_account_mismatch": (((_RECON, "no_trade_breaks"),), "a fill booked to another account than its order"),
    "limit_breach": (((_RECON, "no_trade_breaks"),), "a fill beyond its order's limit price"),
    "missing_confirm": (((_RECON, "no_trade_breaks"),), "a fill the broker did not confirm"),
    "late_confirm": (((_RECON, "no_late_confirms"),), "a confirm after the cut-off"),
    "confirm_price_off": (((_RECON, "no_trade_breaks"),), "a confirm at another price"),
    "confirm_quantity_off": (((_RECON, "no_trade_breaks"),), "a confirm for another quantity"),
    "confirm_fee_off": (((_RECON, "no_trade_breaks"),), "a confirm with another fee"),
    "duplicate_fill": (((_RECON, "no_duplicated_or_unbooked_fills"),), "a fill booked twice"),
    "orphan_confirm": (((_RECON, "no_duplicated_or_unbooked_fills"),), "a confirmed trade the firm never booked"),
    "position_off_at_broker": (((_RECON, "no_position_breaks"),), "the broker's position differs from the books"),
    "unrecorded_split": (((_RECON, "no_unrecorded_corporate_actions"),), "a split the firm did not record"),
    "cash_off_at_broker": (((_RECON, "no_cash_breaks"),), "the broker's cash differs from the books"),
    "unrecorded_dividend": (((_RECON, "no_unrecorded_corporate_actions"),), "a dividend the firm did not record"),
    "fx_rate_shift": (((_FX, "fx_move"), (_RECON, "no_implausible_fx_rates")),
                      "an implausible move of a rate, seen by the FX rule and the reconciliation"),
    "broker_mv_mismatch": (((_RECON, "no_market_value_breaks"),
                            ("landing/broker_positions", "market_value_is_quantity_times_price"),
                            ("landing/broker_positions", "pandera_schema")),
                           "the broker's market value is not its quantity times its price (the reconciliation, the"
                           " SQL rule and the pandera model's check of the same name)"),
    "broker_price_off": (((_RECON, "no_market_value_breaks"),), "the broker prices a holding away from the firm's mark"),
}


class BenchmarkError(RuntimeError):
    pass


# =============================================================================== one CEI home, in a subprocess


def _worker(job: dict) -> dict:
    """Evaluate each task of the job in turn, in this one process (the code location loads once).

    A task is a CEI home (copied from ``base`` first when given, so that it starts from the
    seed's history), a landing root (generated here with the task's fault when it has one) and
    the dates to run on it; the home is pointed to by the environment, as for ``cei``.
    """
    from cei_assets import settings
    from cei_assets.sample_data.faults import FaultNotApplicable

    outcomes = []
    for task in job["tasks"]:
        home, landing = Path(task["home"]), Path(task["landing"])
        if task.get("fault"):
            try:
                _generate(landing, task["seed"], task["days"], task["fault"])
            except FaultNotApplicable as why:
                outcomes.append({"applicable": False, "why": str(why), "days": []})
                continue
        if task.get("base"):
            shutil.copytree(task["base"], home)
        home.mkdir(parents=True, exist_ok=True)
        os.environ.update({"CEI_HOME": str(home), "CEI_LANDING_DIR": str(landing),
                           "DAGSTER_HOME": str(home / "dagster"), "CEI_WAREHOUSE": str(home / "warehouse.duckdb")})
        settings.configure_environment()
        days = _run_on_this_home([dt.date.fromisoformat(d) for d in task["dates"]])
        outcomes.append({"applicable": True, "days": days})
        if task.get("discard"):
            shutil.rmtree(home, ignore_errors=True)
            if task.get("fault"):
                shutil.rmtree(landing, ignore_errors=True)
    return {"tasks": outcomes}


def _run_on_this_home(dates: list[dt.date]) -> list[dict]:
    """``cei run`` for each date, then each check's outcome and one scan of the incident sensor."""
    import dagster as dg

    from cei_assets.cli import run_date
    from cei_assets.definitions import defs
    from cei_assets.incidents.cli import SCAN_CURSOR
    from cei_assets.incidents.store import IncidentStore
    from cei_assets.status import check_status
    from sensors.check_failures import scan

    graph = defs.resolve_asset_graph()
    store = IncidentStore(None)  # $CEI_HOME/incidents.db: copied with the home, scan cursor included
    days = []
    for business_date in dates:
        started = time.perf_counter()
        succeeded = run_date(business_date, quiet=True)
        run_s = time.perf_counter() - started
        instance = dg.DagsterInstance.get()
        failing = [
            {"asset": c["asset"], "name": c["name"], "severity": c["severity"], "blocking": c["blocking"],
             "description": (c["description"] or "")[:300]}
            for c in check_status(instance, graph, business_date) if c["passed"] is False
        ]
        found = scan(instance, graph, store, store.get_cursor(SCAN_CURSOR), settle_seconds=0, describe=False)
        store.set_cursor(SCAN_CURSOR, found.cursor)
        days.append({"date": business_date.isoformat(), "run_succeeded": succeeded, "run_s": run_s,
                     "failing": failing, "incidents_opened": len(found.opened)})
    return days


def _worker_main(job_json: str) -> None:
    job = json.loads(job_json)
    try:
        result = {"ok": True, **_worker(job)}
    except BaseException as error:  # reported to the parent, which fails the benchmark
        import traceback

        result = {"ok": False, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    Path(job["result"]).write_text(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


def _environment() -> dict[str, str]:
    """The embedded defaults: no CEI, Dagster, LLM or Slack setting of the caller leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CEI_", "DAGSTER_", "PG", "ANTHROPIC_"))}
    env.update({"DO_NOT_TRACK": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))})
    return env


def run_tasks(tasks: list[dict], result_path: Path) -> list[dict]:
    """The tasks in one subprocess; its log beside ``result_path``."""
    log_path = result_path.with_suffix(".log")
    job = {"tasks": tasks, "result": str(result_path)}
    with open(log_path, "w") as log:
        completed = subprocess.run([sys.executable, "-m", "bench.detection_quality", "--worker", json.dumps(job)],
                                   cwd=REPO_ROOT, env=_environment(), stdout=log, stderr=subprocess.STDOUT)
    result = json.loads(result_path.read_text()) if result_path.is_file() else {"ok": False, "error": "no result"}
    if completed.returncode != 0 or not result.get("ok"):
        raise BenchmarkError(f"a detection worker crashed ({result.get('error')}); log {log_path}:\n"
                             f"{log_path.read_text()[-3000:]}")
    return result["tasks"]


# =============================================================================== the plan and its runs


@dataclasses.dataclass
class FaultDay:
    fault: str  # "" for a clean date
    seed: int
    date: str
    applicable: bool = True
    failing: list[dict] = dataclasses.field(default_factory=list)
    incidents: int = 0
    run_s: float = 0.0

    def expected(self) -> set[tuple[str, str]]:
        return set(EXPECTED_CHECKS[self.fault][0]) if self.fault else set()

    @property
    def hits(self) -> list[dict]:
        return [c for c in self.failing if (c["asset"], c["name"]) in self.expected()]

    @property
    def others(self) -> list[dict]:
        return [c for c in self.failing if (c["asset"], c["name"]) not in self.expected()]

    @property
    def detected(self) -> bool:
        return bool(self.hits)


def _generate(landing: Path, seed: int, days: int, fault: str | None = None) -> list[dt.date]:
    from cei_assets.sample_data import generate_landing

    summary = generate_landing(landing, START, days, seed=seed, fault=fault, **SIZES)
    return [dt.date.fromisoformat(str(d)) for d in summary.trading_dates]


def evaluate_generated(faults: list[str], seeds: list[int], days: int, work: Path, jobs: int,
                       per_worker: int = 8) -> list[FaultDay]:
    """Every fault x seed, and the clean dates of each seed, through the daily graph.

    Per seed, the clean history before the last date is built once on a base home; then every
    fault's last date (and the clean last date) runs on a copy of it. The last dates go to
    ``jobs`` worker processes at a time, ``per_worker`` dates each.
    """
    results: list[FaultDay] = []

    def base(seed: int) -> tuple[int, Path, list[dt.date]]:
        root = work / f"seed{seed}"
        dates = _generate(root / "clean", seed, days)
        if len(dates) > 1:
            (history,) = run_tasks([{"home": str(root / "base"), "landing": str(root / "clean"),
                                     "dates": [d.isoformat() for d in dates[:-1]]}], root / "base.result.json")
            results.extend(FaultDay("", seed, day["date"], failing=day["failing"], incidents=day["incidents_opened"],
                                    run_s=day["run_s"]) for day in history["days"])
        else:
            (root / "base").mkdir(parents=True)
        return seed, root, dates

    def last_dates(chunk: list[tuple[int, Path, list[dt.date], str]], index: int) -> list[FaultDay]:
        tasks = [{"home": str(root / f"{fault or 'clean'}-home"), "base": str(root / "base"), "discard": True,
                  "landing": str(root / (f"{fault}-landing" if fault else "clean")), "fault": fault, "seed": seed,
                  "days": days, "dates": [dates[-1].isoformat()]} for seed, root, dates, fault in chunk]
        outcomes = run_tasks(tasks, work / f"last-dates-{index}.result.json")
        found = []
        for (seed, _, dates, fault), outcome in zip(chunk, outcomes):
            day = FaultDay(fault, seed, dates[-1].isoformat(), applicable=outcome["applicable"])
            if outcome["days"]:
                (ran,) = outcome["days"]
                day.failing, day.incidents, day.run_s = ran["failing"], ran["incidents_opened"], ran["run_s"]
            found.append(day)
        return found

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        bases = list(pool.map(base, seeds))
        todo = [(seed, root, dates, fault) for seed, root, dates in bases for fault in ["", *faults]]
        size = max(1, min(per_worker, -(-len(todo) // jobs)))
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        for found in pool.map(last_dates, chunks, range(len(chunks))):
            results.extend(found)
    return results


# =============================================================================== the real series


def _real_market_data_module():
    """tests/test_real_market_data.py: its builders turn each real series into warehouse tables."""
    path = REPO_ROOT / "tests" / "test_real_market_data.py"
    spec = importlib.util.spec_from_file_location("cei_real_market_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass
class RealSeries:
    name: str
    dates: int
    blocking: list[tuple]  # (date, check, description): false alarms
    warnings: list[tuple]
    detections: list[tuple]  # real defects caught (raw TAQ zero and crossed quotes)


# On the raw TAQ file these quotes are real defects (zero bids, bid above ask): catching them is right.
TAQ_RAW_DEFECT_RULES = {"price_range_positive", "crossed_quotes"}


def evaluate_real(quick: bool) -> list[RealSeries]:
    if not (REAL_DATA / "nvda-1999-2014.csv").is_file():
        return []
    real = _real_market_data_module()
    series = []

    def add(name: str, outcomes: dict, defect_rules: set[str] = frozenset()):
        blocking, warnings = real._failures(outcomes)
        detections = [w for w in warnings if w[1] in defect_rules] + [b for b in blocking if b[1] in defect_rules]
        series.append(RealSeries(name, len(outcomes), [b for b in blocking if b[1] not in defect_rules],
                                 [w for w in warnings if w[1] not in defect_rules], detections))

    if not quick:
        add("NVDA, ORCL, YHOO daily closes", real._run_daily(real._daily_warehouse(real.DAILY_FILES)))
        add("NVDA unadjusted closes with splits as corporate actions",
            real._run_daily(real._daily_warehouse({"NVDA": real.DAILY_FILES["NVDA"]}, unadjust_nvda_splits=True)))
        minute = next(real.minute.__wrapped__())  # the module's fixture, a generator: its warehouse
        outcomes: dict = {}
        for table in ("quotes", "eod_prices", "fx_rates"):
            for day, results in real._run_table(minute, table).items():
                outcomes.setdefault(day, []).extend(results)
        add("index minute bars, two vendors", outcomes)
    add("TAQ quotes cleaned by highfrequency", real._run_table(real._taq_warehouse(raw=False), "quotes",
                                                               ("vendor", "symbol", "ts")))
    add("TAQ quotes, raw (zero and crossed quotes are real defects)",
        real._run_table(real._taq_warehouse(raw=True), "quotes", ("vendor", "symbol", "ts")), TAQ_RAW_DEFECT_RULES)
    return series


# =============================================================================== figures and report


def figures(days: list[FaultDay], real: list[RealSeries]) -> dict:
    planted = [d for d in days if d.fault and d.applicable]
    clean = [d for d in days if not d.fault]
    fault_alarms = [c for d in planted for c in d.others]
    clean_alarms = [c for d in clean for c in d.failing]
    true_alarms = sum(len(d.hits) for d in planted) + sum(len(s.detections) for s in real)
    false_blocking = (sum(c["blocking"] for c in fault_alarms + clean_alarms) + sum(len(s.blocking) for s in real))
    false_warning = sum(not c["blocking"] for c in fault_alarms + clean_alarms)
    detected = sum(d.detected for d in planted)
    return {
        "fault_runs": len(planted),
        "not_applicable": sum(not d.applicable for d in days if d.fault),
        "detected": detected,
        "missed": len(planted) - detected,
        "recall": detected / len(planted) if planted else None,
        "true_alarms": true_alarms,
        "false_alarms_blocking": false_blocking,
        "false_alarms_warning": false_warning,
        "precision": true_alarms / (true_alarms + false_blocking + false_warning) if true_alarms else None,
        "clean_days": len(clean),
        "clean_days_with_alarms": sum(bool(d.failing) for d in clean),
        "real_dates": sum(s.dates for s in real),
        "real_blocking_false_alarms": sum(len(s.blocking) for s in real),
        "real_warnings": sum(len(s.warnings) for s in real),
        "real_detections": sum(len(s.detections) for s in real),
        "blocking_faults_not_blocked": sorted({f"{d.fault} (seed {d.seed})" for d in planted
                                               if _blocks(d.fault) and not any(c["blocking"] for c in d.hits)}),
        "missed_faults": sorted({f"{d.fault} (seed {d.seed})" for d in planted if not d.detected}),
        "blocking_false_alarms": sorted({f"{d.fault or 'clean'} (seed {d.seed}, {d.date}): {c['asset']}/{c['name']}"
                                         for d in days for c in (d.others if d.fault else d.failing) if c["blocking"]}),
    }


def _blocks(fault: str) -> bool:
    from cei_assets.sample_data import FAULTS

    return FAULTS[fault].blocking_expected


def fault_rows(days: list[FaultDay], faults: list[str]) -> list[dict]:
    from cei_assets.sample_data import FAULTS

    rows = []
    for fault in faults:
        runs = [d for d in days if d.fault == fault]
        planted = [d for d in runs if d.applicable]
        others = [c for d in planted for c in d.others]
        expected, reason = EXPECTED_CHECKS[fault]
        rows.append({
            "fault": fault, "invariant": FAULTS[fault].invariant, "blocking_expected": FAULTS[fault].blocking_expected,
            "expected": [f"{a}/{n}" for a, n in expected], "reason": reason,
            "runs": len(planted), "not_applicable": len(runs) - len(planted),
            "detected": sum(d.detected for d in planted), "missed": sum(not d.detected for d in planted),
            "blocked": sum(any(c["blocking"] for c in d.hits) for d in planted),
            "false_blocking": sum(c["blocking"] for c in others),
            "false_warning": sum(not c["blocking"] for c in others),
            "false_checks": sorted({f"{c['asset']}/{c['name']}" for c in others}),
            "incidents": [d.incidents for d in planted],
        })
    return rows


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def render_report(rows: list[dict], days: list[FaultDay], real: list[RealSeries], summary: dict, *, seeds: list[int],
                  day_count: int, elapsed_s: float, machine: dict, load: tuple, command: str) -> str:
    clean = [d for d in days if not d.fault]
    lines = [
        START_MARKER,
        "## Detection quality",
        "",
        f"`{command}` — every fault of the generator's catalogue planted alone in the last of {day_count} generated"
        f" trading date(s) ({SIZES['symbols']} securities, {SIZES['quotes_per_symbol']} quotes per security and vendor,"
        f" {SIZES['orders_per_day']} orders a day), seeds {', '.join(map(str, seeds))}; the clean dates of every seed;"
        " the real series. Each generated date went through the real daily graph (`run_date`: the Dagster job, every"
        " engine, dbt models and tests, the reconciliation); each check's outcome is read from the Dagster instance"
        " and the incident sensor's `scan` counts the incidents the date opened. A seed's earlier dates are built"
        " once; each fault's date runs on a copy of that CEI home. Expected checks per fault and why:"
        " `EXPECTED_CHECKS` in `bench/detection_quality.py`.",
        "",
        f"**Recall {_pct(summary['recall'])}** ({summary['detected']} of {summary['fault_runs']} planted faults detected,"
        f" {summary['missed']} missed; {summary['not_applicable']} fault/seed pair(s) the generator could not plant)."
        f" **Precision {_pct(summary['precision'])}** ({summary['true_alarms']} true alarms — expected checks failing"
        f" on fault dates, real defects caught — against"
        f" {summary['false_alarms_blocking']} blocking and {summary['false_alarms_warning']} warning false alarms)."
        f" Clean dates: {summary['clean_days']}, {summary['clean_days_with_alarms']} with a failing check."
        f" Real series: {summary['real_dates']:,} dates, {summary['real_blocking_false_alarms']} blocking false"
        f" alarm(s), {summary['real_warnings']} warning(s), {summary['real_detections']} real defect(s) caught.",
        "",
        "| fault | inv. | expected check(s) | should block | runs | detected | missed | blocked by an expected check | false alarms"
        " blocking | false alarms warning | other checks failing | incidents per run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        runs = f"{r['runs']}" + (f" (+{r['not_applicable']} n/a)" if r["not_applicable"] else "")
        lines.append(
            f"| {r['fault']} | {r['invariant']} | {', '.join(f'`{e}`' for e in r['expected'])} |"
            f" {'yes' if r['blocking_expected'] else 'warns'} | {runs} | {r['detected']} | {r['missed']} | {r['blocked']} |"
            f" {r['false_blocking']} | {r['false_warning']} | {', '.join(f'`{c}`' for c in r['false_checks']) or '—'} |"
            f" {', '.join(map(str, r['incidents'])) or '—'} |")
    lines += ["", "Clean generated dates (any failing check is a false alarm):", "",
              "| seed | date | failing checks | incidents |", "|---|---|---|---|"]
    for d in sorted(clean, key=lambda d: (d.seed, d.date)):
        failing = ", ".join(f"`{c['asset']}/{c['name']}` ({'blocking' if c['blocking'] else 'warning'})" for c in d.failing)
        lines.append(f"| {d.seed} | {d.date} | {failing or 'none'} | {d.incidents} |")
    if real:
        lines += ["", f"Real series (`{REAL_DATA}`, the rule engine over every date as tests/test_real_market_data.py"
                      " builds them):", "",
                  "| series | dates | blocking false alarms | warnings (by rule) | real defects caught |", "|---|---|---|---|---|"]
        for s in real:
            by_rule = {}
            for _, name, _ in s.warnings:
                by_rule[name] = by_rule.get(name, 0) + 1
            warn = ", ".join(f"{n} `{r}`" for r, n in sorted(by_rule.items())) or "0"
            caught = {}
            for _, name, _ in s.detections:
                caught[name] = caught.get(name, 0) + 1
            lines.append(f"| {s.name} | {s.dates:,} | {len(s.blocking)} | {warn} |"
                         f" {', '.join(f'{n} `{r}`' for r, n in sorted(caught.items())) or '—'} |")
    else:
        lines += ["", f"Real series: not found at `{REAL_DATA}` (set `CEI_REAL_DATA`); not evaluated."]
    if summary["missed_faults"]:
        lines += ["", "Missed: " + "; ".join(summary["missed_faults"]) + ". What failed instead:", ""]
        lines += [f"- {d.fault} (seed {d.seed}): " + ("; ".join(f"`{c['asset']}/{c['name']}`: {c['description']}"
                                                              for c in d.failing) or "nothing")
                  for d in days if d.fault and d.applicable and not d.detected]
    if summary["blocking_faults_not_blocked"]:
        lines += ["", "Faults the catalogue marks as blocking that no failing blocking expected check stopped: "
                  + "; ".join(summary["blocking_faults_not_blocked"]) + "."]
    if summary["blocking_false_alarms"]:
        lines += ["", "Blocking false alarms: " + "; ".join(summary["blocking_false_alarms"]) + "."]
    lines += [
        "",
        f"Took {elapsed_s:.0f} s on {machine['nproc']} cores ({machine['cpu']}, {machine['ram']}), Python"
        f" {machine['python']}, DuckDB {machine['duckdb']}; load average before {load[0]:.2f} / after {load[1]:.2f}.",
        END_MARKER,
        "",
    ]
    return "\n".join(lines)


# =============================================================================== main


def main(argv: list[str] | None = None) -> dict:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        _worker_main(argv[1])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="generated seeds per fault (3)")
    parser.add_argument("--quick", action="store_true",
                        help=f"one seed, one date, the faults {', '.join(QUICK_FAULTS)}, the TAQ series only")
    parser.add_argument("--faults", default=None, help="comma-separated fault names instead of the whole catalogue")
    parser.add_argument("--jobs", type=int, default=2, help="dates run at the same time (2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file whose detection-quality section is replaced")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the CEI homes go (default a temporary folder); keeps the logs and outcomes.json")
    parser.add_argument("--from-outcomes", type=Path, default=None,
                        help="write the report from a kept outcomes.json instead of running again")
    args = parser.parse_args(argv)

    from cei_assets.sample_data import FAULTS

    faults = list(QUICK_FAULTS if args.quick else FAULTS)
    if args.faults:
        faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(unknown)}")
    missing = set(FAULTS) - set(EXPECTED_CHECKS)
    if missing:
        raise BenchmarkError(f"faults of the catalogue without expected checks: {', '.join(sorted(missing))}")
    seeds = [FIRST_SEED + i for i in range(1 if args.quick else args.seeds)]
    days = 1 if args.quick else DAYS

    if args.from_outcomes is not None:
        kept = json.loads(args.from_outcomes.read_text())
        generated = [FaultDay(**d) for d in kept["generated"]]
        real = [RealSeries(**{k: [tuple(x) for x in v] if isinstance(v, list) else v for k, v in r.items()})
                for r in kept["real"]]
        seeds = sorted({d.seed for d in generated})
        faults = [f for f in FAULTS if any(d.fault == f for d in generated)]
        days = len({d.date for d in generated if not d.fault})  # every seed has the same trading dates
        elapsed, load, command = kept["elapsed_s"], tuple(kept["load"]), kept["command"]
    else:
        command = " ".join(["python -m bench.detection_quality", *argv])
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        work = Path(tempfile.mkdtemp(prefix="cei-detection-", dir=args.work_dir))
        try:
            generated = evaluate_generated(faults, seeds, days, work, args.jobs)
        finally:
            if args.work_dir is None:
                shutil.rmtree(work, ignore_errors=True)
        real = evaluate_real(args.quick)
        elapsed, load = time.perf_counter() - started, (load_before, os.getloadavg()[0])
        if args.work_dir is not None:  # the raw outcomes, kept with the homes' logs
            (work / "outcomes.json").write_text(json.dumps(
                {"generated": [dataclasses.asdict(d) for d in generated], "real": [dataclasses.asdict(s) for s in real],
                 "elapsed_s": elapsed, "load": load, "command": command}, default=str))

    rows = fault_rows(generated, faults)
    summary = figures(generated, real)
    summary["fault_incidents"] = {r["fault"]: r["incidents"] for r in rows}
    summary["faults_with_other_than_one_incident"] = sorted(
        r["fault"] for r in rows if any(n != 1 for n in r["incidents"]))
    summary["elapsed_s"] = round(elapsed, 1)
    report = render_report(rows, generated, real, summary, seeds=seeds, day_count=days, elapsed_s=elapsed,
                           machine=machine_info(), load=load, command=command)
    write_section(args.out, report)
    summary["out"] = str(args.out)
    print(json.dumps({k: v for k, v in summary.items() if k != "fault_incidents"}, indent=2, default=str))
    return summary


if __name__ == "__main__":
    main()
