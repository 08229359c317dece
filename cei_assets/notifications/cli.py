"""``cei notify flush|status`` and ``cei digest --date D [--send]``.

Exit codes as for the rest of ``cei``: 0 done, 1 the store or Slack could not be used (the
message says why; nothing is lost, the outbox keeps it), 2 bad usage.
"""

import datetime as dt
import json
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console

from cei_assets import settings

notify_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Incident alerts: deliver what waits in the outbox, see what is waiting.",
)
digest_app = typer.Typer(add_completion=False, help="The daily digest of one trading date.")
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=code)


def _store_and_settings():
    from cei_assets.incidents.db import IncidentStoreError
    from cei_assets.incidents.store import IncidentStore
    from cei_assets.notifications.config import NotificationConfigError, NotificationSettings

    settings.configure_environment()
    try:
        return IncidentStore(), NotificationSettings.from_environment()
    except (IncidentStoreError, NotificationConfigError) as error:
        raise _fail(str(error), 1) from None


@notify_app.command()
def flush(
    as_json: Annotated[bool, typer.Option("--json", help="What the flush did, as JSON.")] = False,
) -> None:
    """Notify incident events not notified yet, then deliver what is due in the outbox (each message once)."""
    from cei_assets.notifications.dispatch import notify_changes

    store, notification_settings = _store_and_settings()
    result = notify_changes(store, settings=notification_settings)
    if result is None:
        raise _fail("the incident store could not be read (see the log above)", 1)
    if as_json:
        sys.stdout.write(json.dumps({"delivered": result.delivered, "waiting": result.waiting,
                                     "failed": [{"id": i, "error": e} for i, e in result.failed],
                                     "stopped": result.stopped}, indent=2) + "\n")
    else:
        console.print(f"notifications via {notification_settings.transport}: {result.summary()}")
    if result.stopped:
        raise typer.Exit(code=1)


@notify_app.command("status")
def outbox_status(
    as_json: Annotated[bool, typer.Option("--json", help="The messages not delivered yet, as JSON.")] = False,
) -> None:
    """Messages waiting in the outbox, with why (quiet hours, Slack's Retry-After, an outage, a refusal)."""
    from cei_assets.notifications.outbox import Outbox

    store, _ = _store_and_settings()
    rows = Outbox(store.engine).rows(status=("pending", "sending"))
    if as_json:
        sys.stdout.write(json.dumps([
            {"id": r.id, "kind": r.kind, "event": r.event, "incident_id": r.incident_id, "channel": r.channel,
             "status": r.status, "attempts": r.attempts, "not_before": r.not_before, "last_error": r.last_error}
            for r in rows], indent=2) + "\n")
        return
    if not rows:
        console.print("the outbox is empty: every notification was delivered")
        return
    for r in rows:
        when = f", not before {_when(r.not_before)}" if r.not_before else ""
        why = f": {r.last_error}" if r.last_error else ""
        target = f"incident {r.incident_id}" if r.incident_id is not None else r.dedupe_key
        console.print(f"#{r.id} {r.kind} ({r.event}) for {target} to {r.channel or 'its thread'}: {r.status}, "
                      f"{r.attempts} attempt(s){when}{why}")


@digest_app.callback(invoke_without_command=True)
def digest(
    date: Annotated[str, typer.Option("--date", help="The trading date to report (YYYY-MM-DD).")],
    send: Annotated[bool, typer.Option("--send", help="Send it (once per date) instead of only printing it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The figures as JSON.")] = False,
) -> None:
    """The daily digest of one trading date: printed, or sent with --send (a date is sent once)."""
    from cei_assets.trading_calendar import parse_trading_day

    try:
        day = parse_trading_day(date)
    except ValueError as error:
        raise _fail(str(error), 2) from None
    store, notification_settings = _store_and_settings()

    import dagster as dg

    from cei_assets.definitions import defs
    from cei_assets.notifications.blocks import blocks_to_markdown
    from cei_assets.notifications.digest import build_digest, digest_blocks, send_digest
    from cei_assets.warehouse import WarehouseResource

    built = build_digest(day, instance=dg.DagsterInstance.get(), asset_graph=defs.resolve_asset_graph(),
                         store=store, warehouse=WarehouseResource.from_environment())
    if as_json:
        card = built.card
        sys.stdout.write(json.dumps({
            "date": day.isoformat(), "quiet": built.quiet, "checks_run": card.checks_run,
            "checks_failed": card.checks_failed, "incidents_opened": card.incidents_opened,
            "incidents_resolved": card.incidents_resolved, "open_by_severity": card.open_by_severity,
            "breaks": card.breaks, "pnl_breaks": card.pnl_breaks, "pnl_break_total_usd": card.pnl_break_total_usd,
            "break_value_usd": card.break_value_usd, "mttd_minutes": card.mttd_minutes,
            "mttr_minutes": card.mttr_minutes, "analyst_hours_saved": card.analyst_hours_saved,
            "open_incidents": [i["id"] for i in built.open_incidents],
        }, indent=2) + "\n")
    elif not send:
        sys.stdout.write(blocks_to_markdown(digest_blocks(built, policy=notification_settings.policy,
                                                          ui_url=notification_settings.dagster_ui_url)))
    if send:
        outcome = send_digest(built, store=store, settings=notification_settings)
        (err_console if as_json else console).print(outcome.status)
        if outcome.enqueued and not outcome.delivered:
            raise typer.Exit(code=1)


def _when(timestamp: Optional[float]) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
