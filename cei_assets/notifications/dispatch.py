"""notify(), flush_outbox() and notify_changes(): from incident events to delivered messages.

``notify(event, incident)`` decides (``decisions``), writes what is to be sent to the outbox in
the incident store, then tries to deliver everything due. It never raises: a problem is
logged, and a message that cannot be stored is written to a file rather than dropped.

``flush_outbox()`` delivers what is due, oldest first, each message once (``outbox``). It runs
on every incident-sensor tick, after ``notify``, and with ``cei notify flush``.

``notify_changes(store)`` is how the sensor drives notify: it reads the store's append-only
audit log after its own cursor (opened, merged, acknowledged, resolved — whoever caused them:
the sensor, ``cei incidents ack|resolve``), so an event is notified even if the process that
caused it died before notifying; deciding the same event twice enqueues it once.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from cei_assets.notifications import blocks as render
from cei_assets.notifications.config import WEBHOOK, NotificationSettings
from cei_assets.notifications.decisions import EVENTS, plan
from cei_assets.notifications.incident_view import incident_view
from cei_assets.notifications.outbox import ALERT, DIGEST, REPLY, UPDATE, Outbox, OutboxRow
from cei_assets.notifications.slack import Delivery, FileTransport, transport_for

log = logging.getLogger(__name__)

ACTOR = "cei"
CHANGES_CURSOR = "cei notifications"
# How long an opened incident may wait for its description (severity, routing) before it is
# notified without one; the sensor normally describes it in the same tick.
DESCRIBE_GRACE_SECONDS = 600.0
# After Slack refuses a message (not a rate limit, not an outage): wait 1, 2, 4 ... 60 minutes.
REFUSED_RETRY_SECONDS = 60.0
# The first time a store is notified from, events older than this are left to the digest.
FIRST_RUN_LOOKBACK_SECONDS = 86400.0
_AUDIT_EVENTS = {"incident_opened": "opened", "incident_merged": "merged",
                 "incident_acknowledged": "acknowledged", "incident_resolved": "resolved"}


@dataclass
class FlushResult:
    delivered: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    waiting: int = 0  # pending rows not due or waiting behind an earlier one
    stopped: str | None = None  # why the flush stopped early (Slack unreachable, rate limited)

    def summary(self) -> str:
        parts = [f"{len(self.delivered)} delivered"]
        if self.failed:
            parts.append(f"{len(self.failed)} not delivered ({self.failed[-1][1]})")
        if self.waiting:
            parts.append(f"{self.waiting} waiting")
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return "; ".join(parts)


# ---------------------------------------------------------------------- notify

def notify(event: str, incident: Any, *, store_engine: sa.Engine | None = None,
           settings: NotificationSettings | None = None, now: float | None = None,
           details: dict | None = None, flush: bool = True) -> None:
    """Decide, store and try to deliver what ``event`` of ``incident`` calls for. Never raises."""
    now = time.time() if now is None else now
    try:
        settings = settings or NotificationSettings.from_environment()
    except Exception as error:  # a broken configuration must not lose the alert: files
        log.error("notification settings cannot be used (%s); writing the notification to files", error)
        _emergency_file(event, incident, None, f"settings: {error}")
        return
    try:
        view = incident_view(incident)
        store = _store(store_engine)
        outbox = Outbox(store.engine)
        decided = plan(event, view, settings=settings, outbox=outbox, now=now, details=details)
        outbox.enqueue(decided.messages, now=now)
        if decided.held:
            _audit(store, "notification_held", incident_id=view["id"], actor=ACTOR, incident_event=event,
                   severity=view["severity"], reason=decided.held)
    except Exception as error:
        log.error("could not store the %s notification of incident %s: %s\n%s", event,
                  _incident_id(incident), error, traceback.format_exc())
        _emergency_file(event, incident, settings, f"{type(error).__name__}: {error}")
        return
    if flush:
        flush_outbox(store_engine=store.engine, settings=settings, now=now)


def notify_incident(event: str, incident_id: int, *, store_engine: sa.Engine | None = None,
                    settings: NotificationSettings | None = None) -> None:
    """``notify`` for an incident known by id (e.g. right after ``cei incidents ack``). Never raises."""
    try:
        incident = _store(store_engine).get(incident_id)
    except Exception as error:
        log.error("cannot notify %s of incident %s: %s", event, incident_id, error)
        return
    notify(event, incident, store_engine=store_engine, settings=settings)


def notify_changes(store=None, *, settings: NotificationSettings | None = None, now: float | None = None,
                   flush: bool = True, budget_seconds: float | None = None) -> FlushResult | None:
    """Notify every incident event the audit log holds after this function's cursor. Never raises.

    Returns the flush's result (None when nothing could be read).
    """
    now = time.time() if now is None else now
    try:
        store = store if store is not None else _store(None)
        settings = settings or NotificationSettings.from_environment()
        saved = store.get_cursor(CHANGES_CURSOR)
        cursor = int(saved) if saved is not None else _first_cursor(store.engine, now)
        entries = _audit_after(store.engine, cursor)
        incidents: dict[int, Any] = {}
        last = cursor
        for entry_id, event, incident_id, details in entries:
            if incident_id is None:
                last = entry_id
                continue
            if incident_id not in incidents:
                incidents[incident_id] = store.get(incident_id)
            incident = incidents[incident_id]
            if (event == "opened" and incident.content_pending and not incident.describe_error
                    and now - incident.opened_at < DESCRIBE_GRACE_SECONDS):
                break  # not described yet: its severity decides whether it goes at once
            notify(event, incident, store_engine=store.engine, settings=settings, now=now,
                   details=details, flush=False)
            last = entry_id
        if last != cursor:
            store.set_cursor(CHANGES_CURSOR, str(last))
        # Alerts sent before their incident was described: edit them once it is.
        for incident_id in Outbox(store.engine).alerts_without_severity():
            incident = store.get(incident_id)
            if incident.severity:
                notify("opened", incident, store_engine=store.engine, settings=settings, now=now, flush=False)
    except Exception as error:
        log.error("could not read incident events to notify: %s\n%s", error, traceback.format_exc())
        return None
    if not flush:
        return FlushResult()
    return flush_outbox(store_engine=store.engine, settings=settings, now=now, budget_seconds=budget_seconds)


def _first_cursor(engine: sa.Engine, now: float) -> int:
    """Where a store that never notified starts (a deployment upgraded to notifications): after
    the events older than a day, which the digest reports, rather than alerting them all now."""
    from cei_assets.incidents import db

    with engine.connect() as conn:
        return int(conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(db.audit_log.c.id), 0))
            .where(db.audit_log.c.at < now - FIRST_RUN_LOOKBACK_SECONDS)
        ).scalar_one())


def _audit_after(engine: sa.Engine, cursor: int) -> list[tuple[int, str, int | None, dict]]:
    from cei_assets.incidents import db

    log_table = db.audit_log
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(log_table.c.id, log_table.c.event, log_table.c.incident_id, log_table.c.details)
            .where(log_table.c.id > cursor, log_table.c.event.in_(list(_AUDIT_EVENTS)))
            .order_by(log_table.c.id).limit(1000)
        ).all()
    return [(r.id, _AUDIT_EVENTS[r.event], r.incident_id, r.details or {}) for r in rows]


# ---------------------------------------------------------------------- flush

def flush_outbox(*, store_engine: sa.Engine | None = None, settings: NotificationSettings | None = None,
                 now: float | None = None, limit: int = 500, budget_seconds: float | None = None) -> FlushResult:
    """Deliver what is due, oldest first, each once. Never raises.

    ``budget_seconds``: stop starting new deliveries after this long (the sensor's tick is
    bounded); what is left waits for the next flush.
    """
    result = FlushResult()
    started = time.monotonic()
    try:
        now = time.time() if now is None else now
        settings = settings or NotificationSettings.from_environment()
        store = _store(store_engine)
        outbox = Outbox(store.engine)
        transport = transport_for(settings)
        outbox.release_stale_claims(now)
        blocked: set[int] = set()  # incidents with an earlier message still undelivered
        for row in outbox.undelivered(limit):
            if result.stopped:
                result.waiting += 1
                continue
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                result.stopped = f"out of time ({budget_seconds:g} s): the rest goes next flush"
                result.waiting += 1
                continue
            if row.incident_id is not None and row.incident_id in blocked:
                result.waiting += 1
                continue
            if row.not_before is not None and row.not_before > now:
                _block(blocked, row)
                result.waiting += 1
                continue
            root = outbox.message_of(row.incident_id) if row.kind in (UPDATE, REPLY) else None
            if row.kind in (UPDATE, REPLY) and root is not None and not root.delivered:
                _block(blocked, row)  # its alert has not gone yet
                result.waiting += 1
                continue
            if not outbox.claim(row.id, now):
                continue  # another flush has it
            delivery = _send(row, root, transport, settings)
            if delivery.ok:
                outbox.mark_delivered(row, now=time.time(), via=transport.name, channel_id=delivery.channel_id,
                                      ts=delivery.ts, note=delivery.error)
                result.delivered.append(row.id)
                _audit(store, "notification_sent", incident_id=row.incident_id, actor=ACTOR, kind=row.kind,
                       incident_event=row.event, channel=delivery.channel_id or row.channel, via=transport.name,
                       ts=delivery.ts, outbox_id=row.id, location=delivery.location)
                continue
            result.failed.append((row.id, delivery.error or "not delivered"))
            _block(blocked, row)
            if delivery.unreachable:
                outbox.mark_failed(row, error=delivery.error, not_before=None)
                result.stopped = delivery.error
            elif delivery.retry_after is not None:
                outbox.mark_failed(row, error=delivery.error, not_before=now + delivery.retry_after)
                result.stopped = delivery.error  # the whole workspace is rate limited
            else:
                wait = REFUSED_RETRY_SECONDS * min(2 ** row.attempts, 60)
                outbox.mark_failed(row, error=delivery.error, not_before=now + wait)
                log.error("Slack refused outbox message %s (%s): %s; trying again in %.0f s",
                          row.id, row.dedupe_key, delivery.error, wait)
    except Exception as error:
        log.error("flushing the notification outbox failed: %s\n%s", error, traceback.format_exc())
        result.stopped = f"{type(error).__name__}: {error}"
    if result.stopped:
        log.warning("notification outbox: %s", result.summary())
    return result


def _block(blocked: set[int], row: OutboxRow) -> None:
    if row.incident_id is not None:
        blocked.add(row.incident_id)


def _send(row: OutboxRow, root, transport, settings: NotificationSettings) -> Delivery:
    if isinstance(transport, FileTransport):
        return transport.write(_file_name(row), row.text, row.blocks)
    if row.kind == DIGEST or row.kind == ALERT:
        return transport.post(row.channel or settings.policy.default_channel, row.text, row.blocks)
    same_place = root is not None and root.transport == transport.name and root.ts
    if row.kind == UPDATE:
        if not same_place or not transport.can_update:
            # A webhook cannot edit, and a message sent elsewhere (files, before Slack was
            # configured) cannot be edited here: the thread line says what changed.
            return Delivery(True, error="not edited: the alert cannot be edited through "
                                        f"{transport.name}; the reply says what changed")
        return transport.update(root.channel_id, root.ts, row.text, row.blocks)
    # A reply: in the alert's thread where there is one, else on its own with the incident named.
    if same_place and transport.name != WEBHOOK:
        return transport.post(root.channel_id, row.text, None, thread_ts=root.ts)
    channel = (root.channel if root is not None else None) or settings.policy.default_channel
    return transport.post(channel, f"CEI incident #{row.incident_id}: {row.text}", None)


def _file_name(row: OutboxRow) -> str:
    if row.kind == DIGEST:
        return f"digest-{row.dedupe_key.split(':', 1)[-1]}.md"
    return f"incidents/incident-{row.incident_id}-{row.id:06d}-{row.kind}.md"


# ---------------------------------------------------------------------- helpers

def _store(engine: sa.Engine | None):
    from cei_assets.incidents.store import IncidentStore

    return IncidentStore(engine=engine) if engine is not None else IncidentStore()


def _audit(store, audit_event: str, **details) -> None:
    try:
        store.audit(audit_event, **details)
    except Exception as error:  # the message went; a missing audit line must not resend it
        log.error("could not audit %s: %s", audit_event, error)


def _incident_id(incident: Any) -> Any:
    return getattr(incident, "id", None) if not isinstance(incident, dict) else incident.get("id")


def _emergency_file(event: str, incident: Any, settings: NotificationSettings | None, why: str) -> None:
    """The store (or the settings) cannot be used: write the alert to a file so it is not lost."""
    try:
        from cei_assets.notifications.config import NotificationSettings as Settings, Policy

        settings = settings or Settings(policy=Policy(source="(built in)"))
        view = incident_view(incident)
        blocks = render.alert_blocks(view, policy=settings.policy, ui_url=settings.dagster_ui_url)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Not sent: {why}"}]})
        FileTransport(settings).write(f"undelivered/incident-{view['id']}-{event}-{int(time.time() * 1000)}.md",
                  render.alert_text(view), blocks)
    except Exception as error:  # last resort: the log
        log.critical("notification of %s for incident %s lost to the log only: %s (%s)", event,
                     _incident_id(incident), why, error)


__all__ = ["EVENTS", "FlushResult", "flush_outbox", "notify", "notify_changes", "notify_incident"]
