"""``cei incidents``: list, show, acknowledge and resolve incidents; scan for new ones now.

Exit codes as for the rest of ``cei``: 0 done, 1 the store or the instance could not be used
(the message says why), 2 bad usage (no such incident, a step that does not apply).
"""

import datetime as dt
import getpass
import json
import os
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from cei_assets import settings

incidents_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Incidents from failed checks and failed runs: grouped, routed, explained, audited.",
)
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# The command line keeps its own scan cursor in the store (the daemon's sensor keeps its own
# in Dagster); both read the same events and the store never doubles a failure.
SCAN_CURSOR = "cei incidents scan"


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=code)


def _store():
    from cei_assets.incidents.db import IncidentStoreError
    from cei_assets.incidents.store import IncidentStore

    settings.configure_environment()
    try:
        return IncidentStore()
    except IncidentStoreError as error:
        raise _fail(str(error), 1) from None


def _operator(by: Optional[str]) -> str:
    return (by or os.environ.get("CEI_OPERATOR") or getpass.getuser()).strip()


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _get(store, incident_id: int):
    from cei_assets.incidents.store import UnknownIncident

    try:
        return store.get(incident_id)
    except UnknownIncident as error:
        raise _fail(f"{error} (see `cei incidents list`)", 2) from None


@incidents_app.command("list")
def list_incidents(
    status: Annotated[Optional[str], typer.Option(help="Only incidents in this status: open, acknowledged or resolved.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable: a JSON list of incidents.")] = False,
) -> None:
    """Incidents, newest first."""
    from cei_assets.incidents.store import STATUSES

    if status is not None and status not in STATUSES:
        raise _fail(f"unknown status {status!r}; one of {', '.join(STATUSES)}", 2)
    incidents = _store().list_incidents(status)
    if as_json:
        sys.stdout.write(json.dumps([i.summary() for i in incidents], indent=2) + "\n")
        return
    if not incidents:
        console.print("no incidents" + (f" {status}" if status else ""))
        return
    table = Table(show_lines=False)
    for column in ("id", "severity", "status", "team", "title", "opened"):
        table.add_column(column, overflow="fold")
    for i in incidents:
        colour = {"open": "red", "acknowledged": "yellow"}.get(i.status, "green")
        table.add_row(str(i.id), i.severity or "-", f"[{colour}]{i.status}[/{colour}]", i.team or "-", i.title,
                      _when(i.opened_at))
    console.print(table)


@incidents_app.command()
def show(
    incident_id: Annotated[int, typer.Argument(help="The incident's id (see `cei incidents list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Everything the store holds, as JSON.")] = False,
) -> None:
    """The incident's report, then the facts behind it and its timeline."""
    store = _store()
    incident = _get(store, incident_id)
    timeline = store.audit_entries(incident_id=incident_id)
    if as_json:
        data = incident.to_dict()
        data["timeline"] = [
            {"at": e.at, "event": e.event, "actor": e.actor, "details": e.details} for e in timeline
        ]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    console.print(f"[bold]Incident {incident.id}: {incident.title}[/bold]")
    console.print(
        f"{incident.severity or 'severity unknown'} · {incident.status} · team {incident.team or 'unknown'} · "
        f"opened {_when(incident.opened_at)}"
    )
    if incident.acknowledged_by:
        console.print(f"acknowledged by {incident.acknowledged_by} at {_when(incident.acknowledged_at)}")
    if incident.status == "resolved":
        console.print(f"resolved by {incident.resolved_by} at {_when(incident.resolved_at)}: {incident.resolution}")
    console.print()
    report = incident.report_markdown()
    if report:
        console.print(Markdown(report))
    elif incident.describe_error:
        console.print(
            f"[yellow]no report: describing the incident failed ({incident.describe_attempts} attempt(s)): "
            f"{incident.describe_error}; the sensor tries again after {_when(incident.describe_after)}[/yellow]"
        )
    elif incident.content_pending:
        console.print("[dim]no report yet: the incident sensor describes it on its next tick[/dim]")
    console.print()
    _print_facts(incident)
    console.print("\n[bold]Timeline[/bold]")
    for entry in timeline:
        actor = f" by {entry.actor}" if entry.actor else ""
        console.print(f"  {_when(entry.at)}  {entry.event}{actor}{_audit_brief(entry)}")


def _print_facts(incident) -> None:
    console.print("[bold]Facts[/bold]")
    console.print(f"  partitions: {', '.join(p or '(unpartitioned)' for p in incident.partitions)}")
    console.print(f"  runs: {', '.join(incident.run_ids) or '-'}")
    if incident.halted is None:
        console.print("  halted / degraded: unknown (no lineage impact was computed)")
    else:
        console.print(f"  halted: {', '.join(incident.halted) or 'nothing'}")
        console.print(f"  degraded: {', '.join(incident.degraded) or 'nothing'}")
        impact = incident.impact or {}
        if impact.get("business_processes"):
            console.print(f"  business processes: {', '.join(impact['business_processes'])}")
        if impact.get("critical_path"):
            console.print(f"  critical path to P&L: {' -> '.join(impact['critical_path'])}")
    routing = incident.routing or {}
    if routing:
        console.print(
            f"  routing: team {routing.get('team')}, on call {routing.get('oncall') or '-'}, "
            f"channel {routing.get('slack_channel') or '-'}, runbook {routing.get('runbook') or '-'}, "
            f"suggested assignee {routing.get('suggested_assignee') or '-'}"
        )
    table = Table(title="Failures", show_lines=False)
    for column in ("check / step", "partition", "kind", "run", "description", "cleared"):
        table.add_column(column, overflow="fold")
    for stored in incident.failures:
        f = stored.failure
        kind = "crashed" if f.crashed else ("warning" if f.warn_only else ("blocking" if f.blocking else "non-blocking"))
        if f.kind != "check":
            kind = f.kind.replace("_", " ")
        table.add_row(
            f.check_id if f.kind == "check" else (f.step_key or f.check_id), f.partition or "-", kind,
            f.run_id[:8] if f.run_id else "-", f.description, stored.recovery_note or "",
        )
    console.print(table)


def _audit_brief(entry) -> str:
    details = entry.details or {}
    for key in ("note", "reason", "failures", "error", "model"):
        if details.get(key):
            value = details[key]
            return f": {', '.join(value) if isinstance(value, list) else value}"
    if details.get("check"):
        return f": {details['check']}"
    return ""


@incidents_app.command()
def ack(
    incident_id: Annotated[int, typer.Argument(help="The incident's id.")],
    by: Annotated[Optional[str], typer.Option(help="Who takes it (default: CEI_OPERATOR or your login).")] = None,
) -> None:
    """Acknowledge an open incident: someone is on it."""
    from cei_assets.incidents.store import IncidentStateError

    store = _store()
    _get(store, incident_id)
    try:
        incident = store.acknowledge(incident_id, _operator(by))
    except IncidentStateError as error:
        raise _fail(str(error), 2) from None
    console.print(f"incident {incident.id} acknowledged by {incident.acknowledged_by}")


@incidents_app.command()
def resolve(
    incident_id: Annotated[int, typer.Argument(help="The incident's id.")],
    note: Annotated[str, typer.Option(help="What was done; kept with the incident and shown to whoever meets it again.")],
    by: Annotated[Optional[str], typer.Option(help="Who resolved it (default: CEI_OPERATOR or your login).")] = None,
) -> None:
    """Resolve an incident, saying what was done."""
    from cei_assets.incidents.store import IncidentStateError

    store = _store()
    _get(store, incident_id)
    try:
        incident = store.resolve(incident_id, _operator(by), note)
    except IncidentStateError as error:
        raise _fail(str(error), 2) from None
    console.print(f"incident {incident.id} resolved by {incident.resolved_by}: {incident.resolution}")


@incidents_app.command()
def scan(
    as_json: Annotated[bool, typer.Option("--json", help="What the scan did, as JSON.")] = False,
) -> None:
    """Run the incident sensor once now (no daemon needed): new failures become incidents."""
    settings.configure_environment()
    import dagster as dg

    from cei_assets.definitions import defs
    from cei_assets.incidents.db import IncidentStoreError
    from cei_assets.incidents.store import IncidentStoreResource
    from sensors.check_failures import evaluate

    resource = defs.resources.get("incidents") or IncidentStoreResource()
    try:
        store = resource.store()
        context = dg.build_sensor_context(
            instance=dg.DagsterInstance.get(), cursor=store.get_cursor(SCAN_CURSOR), definitions=defs
        )
        result = evaluate(context, resource)
        store.set_cursor(SCAN_CURSOR, result.cursor)
    except IncidentStoreError as error:
        raise _fail(str(error), 1) from None
    if as_json:
        sys.stdout.write(json.dumps({
            "events_read": result.events_read, "new_failures": result.failures_new, "opened": result.opened,
            "merged": result.merged, "resolved": result.resolved, "described": result.described,
            "describe_errors": result.describe_errors, "complete": result.complete,
        }, indent=2) + "\n")
    else:
        console.print(result.summary())
