"""The ``cei`` command line.

Exit codes: 0 when the work succeeded, 1 when a run or a check failed (the output says which
step and why), 2 on bad usage (a date that is not a trading day, an unknown fault, ...).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cei_assets import settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="CEI: a deterministic safety layer under a fund's books, on Dagster.",
)
# Wide when piped (logs, CI): rich would otherwise fold tables at 80 columns.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_DEMO_START = dt.date(2026, 10, 1)


def _usage_error(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def _trading_day(text: str) -> dt.date:
    from cei_assets.trading_calendar import parse_trading_day

    try:
        return parse_trading_day(text)
    except ValueError as error:
        raise _usage_error(str(error)) from None


def _use_landing(landing: Optional[Path]) -> None:
    if landing is not None:
        os.environ["CEI_LANDING_DIR"] = str(landing.resolve())


@app.callback()
def _check_environment() -> None:
    """An incomplete deployment (profile, secrets file) is bad usage, said in words, not a traceback."""
    try:
        settings.check_environment()
    except settings.SettingsError as error:
        raise _usage_error(str(error)) from None


# --------------------------------------------------------------------------- generate


@app.command()
def generate(
    out: Annotated[Optional[Path], typer.Argument(help="Landing root to write.")] = None,
    start: Annotated[Optional[str], typer.Option(help="First trading date (YYYY-MM-DD); rolls forward to a session.")] = None,
    days: Annotated[int, typer.Option(help="Number of trading dates.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same files.")] = 7,
    fault: Annotated[Optional[str], typer.Option(help="Inject one named fault (see --list-faults).")] = None,
    fault_date: Annotated[Optional[str], typer.Option(help="Date of the fault (default: the last date).")] = None,
    symbols: Annotated[int, typer.Option(help="Number of securities.")] = 16,
    quotes_per_symbol: Annotated[int, typer.Option(help="Quotes per security, vendor and day.")] = 390,
    orders_per_day: Annotated[int, typer.Option(help="Orders per trading date.")] = 40,
    list_faults: Annotated[bool, typer.Option("--list-faults", help="Print the fault catalogue and exit.")] = False,
) -> None:
    """Write sample landing data in the landing format, version 1."""
    from cei_assets.sample_data import FAULTS, generate_landing

    if list_faults:
        table = Table(title="Fault catalogue", show_lines=False)
        for column in ("name", "invariant", "files", "blocking", "what it does"):
            table.add_column(column)
        for fault_def in FAULTS.values():
            table.add_row(
                fault_def.name,
                str(fault_def.invariant or "file"),
                ", ".join(fault_def.datasets),
                "yes" if fault_def.blocking_expected else "warn",
                fault_def.summary,
            )
        console.print(table)
        return
    if out is None:
        raise _usage_error("OUT is required (the landing root to write)")
    if start is None:
        raise _usage_error("--start is required (YYYY-MM-DD)")
    try:
        start_date = dt.date.fromisoformat(start)
        fault_day = dt.date.fromisoformat(fault_date) if fault_date else None
    except ValueError as error:
        raise _usage_error(f"bad date: {error}") from None
    started = time.perf_counter()
    try:
        summary = generate_landing(
            out, start_date, days, seed=seed, fault=fault, fault_date=fault_day, symbols=symbols,
            quotes_per_symbol=quotes_per_symbol, orders_per_day=orders_per_day,
            progress=lambda line: console.print(f"  {line}"),
        )
    except ValueError as error:
        raise _usage_error(str(error)) from None
    dates = getattr(summary, "trading_dates", None) or []
    span = f" ({dates[0]} to {dates[-1]})" if dates else ""
    console.print(f"wrote {len(dates)} trading date(s){span} to {out} in {time.perf_counter() - started:.1f}s")
    if fault:
        console.print(f"fault [bold]{fault}[/bold] injected; details in {out / '_generator.json'}")


# --------------------------------------------------------------------------- run


def daily_job():
    """The daily job as the code location defines it (module level, so it is reconstructable)."""
    from cei_assets.definitions import defs
    from cei_assets.jobs import DAILY_JOB

    return defs.resolve_job_def(DAILY_JOB)


def _watch_progress(instance, invocation: str, done: threading.Event) -> None:
    """Print each step as it finishes, reading the run's events from the instance."""
    import dagster as dg

    run_id = None
    seen = 0
    started_at: dict[str, float] = {}
    while not done.is_set() or run_id is not None:
        if run_id is None:
            records = instance.get_run_records(dg.RunsFilter(tags={"cei/invocation": invocation}), limit=1)
            if records:
                run_id = records[0].dagster_run.run_id
            elif done.is_set():
                return
            else:
                time.sleep(0.2)
                continue
        # Read after noting whether the run is over, so the last read sees its last events: a
        # check of `done` after the read would miss what happened between the two.
        finished = done.is_set()
        logs = instance.all_logs(run_id)
        for entry in logs[seen:]:
            event = entry.dagster_event
            if event is None:
                continue
            name = event.event_type_value
            if name == "STEP_START":
                started_at[event.step_key] = entry.timestamp
            elif name == "STEP_SUCCESS":
                took = entry.timestamp - started_at.get(event.step_key, entry.timestamp)
                console.print(f"  [green]ok[/green]   {event.step_key} ({took:.1f}s)")
            elif name == "STEP_FAILURE":
                console.print(f"  [red]FAIL[/red] {event.step_key}")
            elif name == "STEP_SKIPPED":
                console.print(f"  [yellow]skip[/yellow] {event.step_key}")
        seen = len(logs)
        if finished:
            return
        time.sleep(0.3)


def check_failure_text(evaluation, spec_description: str | None = None) -> str:
    """A failed check in one sentence, whichever engine produced it.

    dbt tests report only a row count; their rule's own description (dbt ``meta.description``,
    carried on the check spec) says what the rows mean.
    """
    if evaluation.description:
        return evaluation.description
    failed_rows = evaluation.metadata.get("dagster_dbt/failed_row_count")
    if spec_description and failed_rows is not None:
        return f"{spec_description} ({failed_rows.value} failing row(s))"
    if spec_description:
        return spec_description
    if failed_rows is not None:
        return f"dbt test found {failed_rows.value} failing row(s)"
    return "failed without a description"


def _check_descriptions() -> dict:
    from cei_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    return {key: graph.get_check_spec(key).description for key in graph.asset_check_keys}


def _failure_reasons(instance, run_id: str) -> list[str]:
    """Why a run failed, in words: failed checks, then steps that failed for another reason.

    Warnings are listed as warnings: they did not stop the run, but the reader should see them.
    """
    import dagster as dg

    descriptions = _check_descriptions()
    failed, warned = [], []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        key = dg.AssetCheckKey(evaluation.asset_key, evaluation.check_name)
        text = (
            f"{evaluation.asset_key.to_user_string()} / {evaluation.check_name}: "
            f"{check_failure_text(evaluation, descriptions.get(key))}"
        )
        if evaluation.severity == dg.AssetCheckSeverity.WARN:
            warned.append(f"check {text} (warning)")
        else:
            failed.append(f"check {text} (failed)")
    reasons = failed
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        error = event.event_specific_data.error
        if error and "DagsterAssetCheckFailedError" in (error.cls_name or "") + (error.message or ""):
            continue  # stopped by a blocking check, listed above
        message = (error.message or "").strip() if error else "unknown error"
        cause = error.cause if error else None
        while cause is not None:  # the user-facing reason is the innermost error
            message = (cause.message or message).strip()
            cause = cause.cause
        first_line = message.splitlines()[0] if message else "unknown error"
        # A dg.Failure is CEI's own explanation: show its words, not the exception's class.
        first_line = first_line.removeprefix("dagster._core.definitions.events.Failure: ")
        reasons.append(f"step {event.step_key} failed: {first_line}")
    return reasons + warned


def run_date(business_date: dt.date, quiet: bool = False, select: list | None = None) -> bool:
    """Materialize the daily graph for one partition through the Dagster instance."""
    import dagster as dg

    settings.configure_environment()
    instance = dg.DagsterInstance.get()
    invocation = uuid.uuid4().hex
    done = threading.Event()
    watcher = None
    if not quiet:
        watcher = threading.Thread(target=_watch_progress, args=(instance, invocation, done), daemon=True)
        watcher.start()
    started = time.perf_counter()
    log_path = settings.cei_home() / "logs" / f"run-{business_date.isoformat()}-{invocation[:8]}.log"
    # Dagster's event log and dbt's output go to a file (and to the UI); the terminal gets one
    # line per step and, on failure, the reasons in words.
    with _output_to(log_path):
        result = dg.execute_job(
            dg.reconstructable(daily_job),
            instance=instance,
            tags={"dagster/partition": business_date.isoformat(), "cei/invocation": invocation, "cei/launched_by": "cli"},
            raise_on_error=False,
            asset_selection=select,
        )
        done.set()
        if watcher is not None:
            watcher.join(timeout=60)  # its last read of the run's events; quick, unless the machine is loaded
    took = time.perf_counter() - started
    if result.success:
        console.print(f"[green]{business_date}: run {result.run_id[:8]} succeeded[/green] in {took:.1f}s")
        return True
    console.print(f"[red]{business_date}: run {result.run_id[:8]} failed[/red] after {took:.1f}s")
    for reason in _failure_reasons(instance, result.run_id):
        console.print(f"  - {reason}")
    console.print(f"  full log: {log_path}")
    return False


def run_date_queued(business_date: dt.date, select: list | None = None, wait_timeout: float = 120.0) -> bool:
    """Submit the daily job for one partition to the instance's run queue and follow it.

    The run is launched by dagster-daemon (production profile), like a scheduled run; this
    process prints its steps and, when it ends, the same outcome as ``run_date``.
    """
    import dagster as dg

    from cei_assets.queued_runs import (
        HEARTBEAT_STALE_SECONDS, LOCATION, WORKSPACE_FILE, CodeLocationNotLoaded, DaemonNotRunning, queue_daemon_alive,
        submit_daily_run, wait_for_run,
    )

    settings.configure_environment()
    instance = dg.DagsterInstance.get()
    invocation = uuid.uuid4().hex
    tags = {"dagster/partition": business_date.isoformat(), "cei/invocation": invocation, "cei/launched_by": "cli"}
    log_path = settings.cei_home() / "logs" / f"run-{business_date.isoformat()}-{invocation[:8]}.log"
    done = threading.Event()
    started = time.perf_counter()
    status = None
    # The code server's own output goes to the file; the run's output is in the daemon's log and the UI.
    try:
        with _output_to(log_path), submit_daily_run(instance, tags, str(settings.landing_dir()), select) as submitted:
            run_id = submitted.run_id
            if submitted.status == dg.DagsterRunStatus.QUEUED:
                console.print(f"queued run {run_id}; waiting for the daemon")
                if not queue_daemon_alive(instance):
                    console.print(f"[yellow]no heartbeat from dagster-daemon's run queue in the last {HEARTBEAT_STALE_SECONDS:.0f}s: "
                                  f"is it running? (`make services`); giving up after {wait_timeout:.0f}s[/yellow]")
            else:
                console.print(f"launched run {run_id} (this instance has no run queue)")
            watcher = threading.Thread(target=_watch_progress, args=(instance, invocation, done), daemon=True)
            watcher.start()
            try:
                status = wait_for_run(instance, run_id, wait_timeout)
            except DaemonNotRunning:
                pass
            finally:
                done.set()
                watcher.join(timeout=60)  # its last read of the run's events; quick, unless the machine is loaded
    except CodeLocationNotLoaded as error:
        # The operator needs what failed and where to read more, not Dagster's traceback.
        with log_path.open("a", encoding="utf-8") as log_file:
            log_file.write(error.details)
        err_console.print(
            f"[red]error:[/red] {business_date}: no run submitted: the code location {LOCATION} of "
            f"{escape(str(WORKSPACE_FILE))} failed to load: {escape(error.cause)}; full error in {escape(str(log_path))}"
        )
        return False
    took = time.perf_counter() - started
    if status is None:
        console.print(
            f"[red]{business_date}: run {run_id[:8]} is still queued after {took:.0f}s: dagster-daemon is not running[/red] "
            f"(no heartbeat from its run queue in the last {HEARTBEAT_STALE_SECONDS:.0f}s).\n"
            "  Start the services with `make services` (or bin/cei-services); the run starts as soon as the daemon does."
        )
        return False
    if status == dg.DagsterRunStatus.SUCCESS:
        console.print(f"[green]{business_date}: run {run_id[:8]} succeeded[/green] in {took:.1f}s")
        return True
    console.print(f"[red]{business_date}: run {run_id[:8]} {'was canceled' if status == dg.DagsterRunStatus.CANCELED else 'failed'}[/red] after {took:.1f}s")
    for reason in _failure_reasons(instance, run_id):
        console.print(f"  - {reason}")
    console.print(f"  full log: the run's page in the Dagster UI (/runs/{run_id}) and {settings.logs_dir() / 'daemon.log'}")
    return False


@contextlib.contextmanager
def _output_to(log_path: Path):
    """Send this process's and its children's stdout and stderr to a file, keeping ``console``.

    File-descriptor level, so step subprocesses (multiprocess executor) and dbt follow too.
    """
    global console
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    previous_console = console
    console = Console(file=terminal, highlight=False, soft_wrap=True, force_terminal=previous_console.is_terminal)
    with log_path.open("ab") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            console = previous_console
            terminal.close()


@app.command()
def run(
    date: Annotated[str, typer.Option("--date", help="Trading date to materialize (YYYY-MM-DD).")],
    landing: Annotated[Optional[Path], typer.Option(help="Landing root (default: CEI_LANDING_DIR).")] = None,
    select: Annotated[Optional[str], typer.Option(
        help="Only these assets: comma-separated keys or group:NAME; a trailing + adds everything downstream "
             "(e.g. positions+ or group:staging+).")] = None,
    queue: Annotated[bool, typer.Option(
        "--queue", help="Submit the run to the instance's run queue (launched by dagster-daemon, as a scheduled "
                        "run is) and follow it, instead of running it in this process.")] = False,
    wait_timeout: Annotated[float, typer.Option(
        help="With --queue: seconds a run may stay queued before CEI checks that dagster-daemon is running "
             "and gives up if it is not.")] = 120.0,
) -> None:
    """Materialize the whole daily graph for one trading date; the run appears in the Dagster UI."""
    business_date = _trading_day(date)
    _use_landing(landing)
    settings.configure_environment()
    selection = _asset_selection(select) if select else None
    landing_root = settings.landing_dir()
    if not landing_root.is_dir():
        raise _usage_error(f"the landing root {landing_root} does not exist (set CEI_LANDING_DIR or --landing)")
    if not (landing_root / business_date.isoformat()).is_dir():
        console.print(f"[yellow]the landing root has no folder {business_date}: every daily file will be reported missing[/yellow]")
    console.print(f"running the daily graph for {business_date} from {landing_root}")
    if queue:
        ok = run_date_queued(business_date, select=selection, wait_timeout=wait_timeout)
    else:
        ok = run_date(business_date, select=selection)
    raise typer.Exit(code=0 if ok else 1)


def _asset_selection(text: str) -> list:
    """``a,b+`` -> the asset keys a and b plus everything downstream of b."""
    import dagster as dg

    from cei_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    known = {k.to_user_string(): k for k in graph.materializable_asset_keys}
    selected = set()
    groups = {graph.get(k).group_name for k in known.values()}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        downstream = part.endswith("+")
        name = part.rstrip("+")
        if name.startswith("group:"):
            group = name.removeprefix("group:")
            if group not in groups:
                raise _usage_error(f"unknown group {group!r}; groups are: {', '.join(sorted(groups))}")
            selection = dg.AssetSelection.groups(group)
        elif name not in known:
            raise _usage_error(f"unknown asset {name!r}; assets are: {', '.join(sorted(known))}")
        else:
            selection = dg.AssetSelection.assets(known[name])
        if downstream:
            selection = selection.downstream()
        selected |= set(selection.resolve(graph))
    return sorted(selected, key=lambda k: k.to_user_string())


# --------------------------------------------------------------------------- status


def _load_status(business_date: dt.date) -> dict:
    import dagster as dg

    from cei_assets.definitions import defs
    from cei_assets.status import date_status

    instance = dg.DagsterInstance.get()
    return date_status(instance, defs.resolve_asset_graph(), business_date)


def _print_status(report: dict) -> None:
    assets = report["assets"]
    done = sum(a["materialized"] for a in assets)
    console.print(f"[bold]{report['date']}[/bold]: {done} of {len(assets)} assets materialized")
    missing = [a["key"] for a in assets if not a["materialized"]]
    if missing:
        console.print("  not materialized: " + ", ".join(missing))
    checks = report["checks"]
    if not checks:
        return
    table = Table(show_lines=False)
    for column in ("asset", "check", "result", "blocking", "description"):
        table.add_column(column, overflow="fold")
    for check in checks:
        if check["passed"] is None:
            result = "[dim]not run[/dim]"
        elif check["passed"]:
            result = "[green]passed[/green]"
        else:
            result = "[red]FAILED[/red]" if check["severity"] == "ERROR" else "[yellow]warned[/yellow]"
        table.add_row(check["asset"], check["name"], result, "yes" if check["blocking"] else "no", check["description"] or "")
    console.print(table)
    failed = [c for c in checks if c["passed"] is False]
    passed = [c for c in checks if c["passed"]]
    console.print(f"checks: {len(passed)} passed, {len(failed)} failed, {len(checks) - len(passed) - len(failed)} not run")


def _print_day_summary(report: dict) -> None:
    """One line per date, then only the checks that did not pass (the full table: cei status)."""
    assets = report["assets"]
    checks = report["checks"]
    done = sum(a["materialized"] for a in assets)
    failed = [c for c in checks if c["passed"] is False and c["severity"] == "ERROR"]
    warned = [c for c in checks if c["passed"] is False and c["severity"] != "ERROR"]
    passed = sum(1 for c in checks if c["passed"])
    colour = "red" if failed else ("yellow" if warned else "green")
    console.print(
        f"[{colour}]{report['date']}[/{colour}]: {done}/{len(assets)} assets materialized; "
        f"{len(checks)} checks: {passed} passed, {len(warned)} warned, {len(failed)} failed"
    )
    for check in failed + warned:
        label = "FAILED" if check in failed else "warned"
        console.print(f"    {label} {check['asset']} / {check['name']}: {check['description']}")


@app.command()
def status(
    date: Annotated[str, typer.Option("--date", help="Trading date (YYYY-MM-DD).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What is materialized and which checks passed for one trading date."""
    business_date = _trading_day(date)
    settings.configure_environment()
    report = _load_status(business_date)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_status(report)


@app.command()
def override(
    date: Annotated[str, typer.Option("--date", help="Trading date (YYYY-MM-DD).")],
    check: Annotated[str, typer.Option("--check", help="Name of the failed check to release.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is safe to proceed; recorded with who and when.")],
    asset: Annotated[Optional[str], typer.Option(help="Asset of the check, when several share its name.")] = None,
) -> None:
    """Release a failed blocking check for one date so downstream assets may build."""
    import dagster as dg

    from asset_checks.gating import find_check, record_override
    from cei_assets.definitions import defs

    business_date = _trading_day(date)
    if not reason.strip():
        raise _usage_error("--reason must say why it is safe to proceed")
    settings.configure_environment()
    graph = defs.resolve_asset_graph()
    try:
        check_key = find_check(graph, check, asset)
        evaluation = record_override(dg.DagsterInstance.get(), graph, check_key, business_date, reason.strip())
    except ValueError as error:
        raise _usage_error(str(error)) from None
    console.print(f"{check_key.asset_key.to_user_string()} / {check_key.name} for {business_date}: {evaluation.description}")


@app.command("explain-pnl")
def explain_pnl(
    date: Annotated[str, typer.Option("--date", help="Trading date (YYYY-MM-DD).")],
    account: Annotated[Optional[str], typer.Option(help="One account; all accounts when omitted.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the Markdown report to this file instead of stdout.")] = None,
) -> None:
    """Why P&L differs from what the books and the broker imply: breaks by security, what remains unexplained."""
    from cei_assets.pnl_explain import explain_pnl_command

    settings.configure_environment()
    raise typer.Exit(explain_pnl_command(date, account, out))


# --------------------------------------------------------------------------- demo and ui


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="Trading dates to generate and run.")] = 5,
    start: Annotated[str, typer.Option(help="First date (YYYY-MM-DD).")] = DEFAULT_DEMO_START.isoformat(),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Generate a few trading dates into $CEI_HOME/landing, run them in order, print the outcome."""
    from cei_assets.sample_data import generate_landing

    settings.configure_environment()
    landing_root = settings.landing_dir()
    console.print(f"[bold]1. Generating {days} trading dates of sample data[/bold] into {landing_root}")
    try:
        summary = generate_landing(
            landing_root, dt.date.fromisoformat(start), days, seed=seed,
            progress=lambda line: console.print(f"  {line}"),
        )
    except ValueError as error:
        raise _usage_error(str(error)) from None
    os.environ["CEI_LANDING_DIR"] = str(landing_root)
    dates = list(summary.trading_dates)
    console.print(f"[bold]2. Running the daily graph[/bold] for {dates[0]} to {dates[-1]} (Dagster home {settings.dagster_home()})")
    outcomes = {}
    for day in dates:
        day = dt.date.fromisoformat(str(day))
        outcomes[day] = run_date(day)
        if not outcomes[day]:
            console.print("[red]stopping: the next dates roll forward from this one[/red]")
            break
    console.print("[bold]3. What passed and failed[/bold]")
    for day in outcomes:
        _print_day_summary(_load_status(day))
    _print_books_summary(dates[-1])
    console.print(
        "\nEvery check of a date, with its metadata: .venv/bin/cei status --date DATE [--json]\n"
        "[bold]Open the Dagster UI[/bold] to see the lineage, the runs and the checks:\n"
        "  .venv/bin/cei ui        (then browse http://127.0.0.1:3000)"
    )
    raise typer.Exit(code=0 if all(outcomes.values()) and len(outcomes) == len(dates) else 1)


def _print_books_summary(day) -> None:
    from cei_assets.warehouse import WarehouseResource

    warehouse = WarehouseResource.from_environment()
    with warehouse.read() as conn:
        try:
            rows = conn.execute(
                """
                SELECT account, base_currency, round(sum(realized_pnl_base), 2), round(sum(unrealized_pnl_base), 2),
                       round(sum(total_pnl_base), 2)
                FROM books.daily_pnl WHERE business_date = ? GROUP BY ALL ORDER BY account
                """,
                [dt.date.fromisoformat(str(day))],
            ).fetchall()
        except Exception:  # the books were never built (the first run failed)
            return
    table = Table(title=f"P&L on {day} (base currency)")
    for column in ("account", "ccy", "realized", "unrealized", "total"):
        table.add_column(column, justify="right" if column in ("realized", "unrealized", "total") else "left")
    for account, ccy, realized, unrealized, total in rows:
        table.add_row(account, ccy, f"{realized:,.2f}", f"{unrealized:,.2f}", f"{total:,.2f}")
    console.print(table)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port of the Dagster webserver.")] = 3000,
) -> None:
    """Start the Dagster UI (dagster dev) on this project with CEI's instance."""
    settings.configure_environment()
    dagster = Path(sys.executable).with_name("dagster")
    os.chdir(settings.PROJECT_ROOT)
    os.execv(str(dagster), [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)])


from cei_assets.incidents.cli import incidents_app  # noqa: E402

app.add_typer(incidents_app, name="incidents")

from cei_assets.notifications.cli import digest_app, notify_app  # noqa: E402

app.add_typer(notify_app, name="notify")
app.add_typer(digest_app, name="digest")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
