"""What to send for an incident event, decided by rules alone (``notifications.yaml``).

- P1 and P2 (the configured ``immediate`` severities, and an unknown severity: fail closed)
  post an alert to the owning team's channel at once; P3 and P4 wait for the daily digest.
- Once an incident has an alert, every later event (failures merged, acknowledged, resolved)
  edits that alert to its current state and adds one line in its thread; nothing new is posted.
  An incident that grows into P1/P2 by a merge gets its alert then.
- Suppression: an incident whose checks were all alerted (by another incident) within their
  window does not post a new alert; one line goes into the earlier alert's thread instead.
- Quiet hours: an alert not allowed at night is held in the outbox until they end.

Deterministic; no model output is read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cei_assets.notifications import blocks as render
from cei_assets.notifications.config import NotificationSettings
from cei_assets.notifications.outbox import ALERT, REPLY, UPDATE, IncidentMessage, Message, Outbox

EVENTS = ("opened", "merged", "acknowledged", "resolved")


@dataclass
class Plan:
    messages: list[Message] = field(default_factory=list)
    held: str | None = None  # why nothing goes at once (digest, suppression, ...), for the audit log
    suppressed_by: int | None = None


def plan(event: str, incident: dict, *, settings: NotificationSettings, outbox: Outbox, now: float,
         details: dict | None = None) -> Plan:
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}; one of {', '.join(EVENTS)}")
    policy = settings.policy
    incident_id = incident["id"]
    existing = outbox.message_of(incident_id)
    if existing is not None:
        return Plan(_follow_ups(event, incident, existing, settings, details))

    severity = incident["severity"]
    if event in ("acknowledged", "resolved"):
        return Plan(held=f"{event}: the incident has no alert ({render.severity_label(severity)}); "
                         "the daily digest reports it")
    if not policy.is_immediate(severity):
        return Plan(held=f"{severity} waits for the daily digest (immediate: {', '.join(sorted(policy.immediate))})")

    earlier, window = _suppressing_alert(incident, outbox, settings, now)
    if earlier is not None:
        reply = Message(
            dedupe_key=f"incident:{incident_id}:repeat-of:{earlier.incident_id}",
            kind=REPLY, incident_id=earlier.incident_id, event="opened",
            text=render.reply_text("opened", incident, details={"note": render.repeat_text(incident, window)}),
        )
        return Plan([reply], held=f"suppressed: the same checks were alerted by incident {earlier.incident_id} "
                                  f"within {window:g} s", suppressed_by=earlier.incident_id)

    hold_until = policy.quiet_hours.hold_until(severity, now) if policy.quiet_hours else None
    alert = Message(
        dedupe_key=f"incident:{incident_id}:alert",
        kind=ALERT, incident_id=incident_id, event=event,
        channel=(incident["routing"] or {}).get("slack_channel") or policy.default_channel,
        text=render.alert_text(incident),
        blocks=render.alert_blocks(incident, policy=policy, ui_url=settings.dagster_ui_url),
        not_before=hold_until, team=incident["team"], checks=list(incident["checks"]),
        failures_seen=len(incident["failures"]), shown_state=shown_state(incident),
    )
    held = f"quiet hours: held until {render._when(hold_until)}" if hold_until else None
    return Plan([alert], held=held)


def _follow_ups(event: str, incident: dict, existing: IncidentMessage, settings: NotificationSettings,
                details: dict | None) -> list[Message]:
    """Edit the alert to the incident's current state and say in its thread what happened."""
    incident_id = incident["id"]
    state = _state_key(event, incident)
    messages = []
    shown = shown_state(incident)
    if shown != existing.shown_state:  # edit only when what it shows has changed
        messages.append(Message(
            dedupe_key=f"incident:{incident_id}:{shown}:update",
            kind=UPDATE, incident_id=incident_id, event=event,
            text=render.alert_text(incident),
            blocks=render.alert_blocks(incident, policy=settings.policy, ui_url=settings.dagster_ui_url),
            failures_seen=len(incident["failures"]) or None, shown_state=shown,
        ))
    if event == "merged":
        # The store appends failures in order: those past what was told are the ones that joined.
        joined = incident["failures"][existing.failures_notified:]
        details = {**(details or {}), "failures": [f["check_id"] for f in joined] or (details or {}).get("failures")}
    if event != "opened":  # "opened" again only refreshes the alert (e.g. once it is described)
        messages.append(Message(
            dedupe_key=f"incident:{incident_id}:{state}:reply",
            kind=REPLY, incident_id=incident_id, event=event,
            text=render.reply_text(event, incident, details=details),
        ))
    return messages


def shown_state(incident: dict) -> str:
    """What the alert shows that an event can change; equal states need no edit."""
    open_failures = sum(1 for f in incident["failures"] if f["recovered_at"] is None)
    return "|".join(str(v) for v in (
        incident["severity"], incident["status"], len(incident["failures"]) or len(incident["checks"]),
        open_failures, bool(incident["report"]), incident.get("acknowledged_by"), incident["title"],
    ))[:400]


def _state_key(event: str, incident: dict) -> str:
    """What makes this event of this incident itself: deciding it twice enqueues it once."""
    if event == "merged":
        # Each merge grows the failures: their count tells one merge from the next.
        return f"merged:{len(incident['failures']) or len(incident['checks'])}"
    if event == "opened":
        return f"opened:{incident['severity'] or 'unknown'}:{bool(incident['report'])}"
    return event


def _suppressing_alert(incident: dict, outbox: Outbox, settings: NotificationSettings,
                       now: float) -> tuple[IncidentMessage | None, float]:
    checks = list(incident["checks"])
    if not checks:
        return None, 0.0
    policy = settings.policy
    windows = {c: policy.suppression_seconds(c, incident["team"]) for c in checks}
    longest = max(windows.values())
    if longest <= 0:
        return None, 0.0
    for earlier in outbox.alerts_since(now - longest):  # newest first
        if earlier.incident_id == incident["id"]:
            continue
        if all(c in earlier.checks and earlier.created_at >= now - windows[c] for c in checks):
            return earlier, max(windows[c] for c in checks)
    return None, 0.0
