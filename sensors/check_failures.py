"""The incident sensor: failed checks and failed runs in the Dagster instance become incidents.

Dagster OSS has no sensor for failed asset checks (``run_failure_sensor`` misses the
non-blocking ones); this is it. Each tick (``scan``):

1. reads what the instance recorded since the cursor (``sensors.outcomes``: one indexed query
   per page of events, whatever the number of checks);
2. drops failures already stored (each is keyed by its Dagster event storage id), groups the
   rest (``cei_assets.incidents.grouping``) and stores them with their audit entries in one
   transaction: an incident is opened or merged into, never doubled;
3. clears failures whose checks passed again and resolves the incidents so cleared, with a note;
4. has each new or grown incident described (impact, routing, similar incidents, the report:
   ``cei_assets.incidents.compose``); if that fails the incident stays, with the error audited.

The cursor (JSON, in the sensor's own cursor) is the storage id up to which every event is
settled; it survives daemon restarts, and a tick that dies before saving it is replayed
harmlessly. ``cei incidents scan`` runs the same evaluation once, without a daemon.
"""

import datetime as dt
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass, field

import dagster as dg

from cei_assets.incidents.grouping import (
    group_failures,
    partitions_with_open_step_failures,
    recoveries,
    resolutions,
)
from cei_assets.incidents.store import SYSTEM_ACTOR, IncidentStateError, IncidentStore, IncidentStoreResource
from cei_assets.notifications.dispatch import notify_changes
from sensors.outcomes import read_outcomes, with_steps

SENSOR_NAME = "incident_sensor"
CURSOR_VERSION = 1
# A failed check must be an incident within 30 s (issue 8): a tick every 15 s leaves room for
# the tick itself and the daemon's own loop; an idle tick costs a few milliseconds.
DEFAULT_INTERVAL_SECONDS = 15
# Describing (the LLM may be slow) stops after this long; what remains is described next tick.
# With the read's own budget (20 s) this stays inside Dagster's 60 s sensor evaluation timeout.
DESCRIBE_BUDGET_SECONDS = 20.0
# Delivering alerts stops after this long (a slow Slack); the rest waits in the outbox.
NOTIFY_BUDGET_SECONDS = 12.0

log = logging.getLogger(__name__)


def sensor_interval_seconds() -> int:
    """``CEI_INCIDENT_SENSOR_INTERVAL`` (seconds between ticks), 15 by default."""
    text = os.environ.get("CEI_INCIDENT_SENSOR_INTERVAL", "").strip()
    if not text:
        return DEFAULT_INTERVAL_SECONDS
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ValueError(f"CEI_INCIDENT_SENSOR_INTERVAL must be a whole number of seconds >= 1, not {text!r}")
    return seconds


@dataclass
class ScanResult:
    cursor: str
    events_read: int = 0
    failures_new: int = 0
    opened: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    described: list[int] = field(default_factory=list)
    describe_errors: list[int] = field(default_factory=list)
    complete: bool = True

    def summary(self) -> str:
        parts = [f"{self.events_read} event(s) read", f"{self.failures_new} new failure(s)"]
        for label, ids in (("opened", self.opened), ("merged into", self.merged), ("resolved", self.resolved)):
            if ids:
                parts.append(f"{label} incident(s) {', '.join(map(str, ids))}")
        if self.describe_errors:
            parts.append(f"could not describe {', '.join(map(str, self.describe_errors))}")
        if not self.complete:
            parts.append("more to read next tick")
        return "; ".join(parts)


def parse_cursor(cursor: str | None) -> int:
    """The storage id to read after. A missing or unreadable cursor rereads everything:
    every step is idempotent, so rereading costs time, never a duplicate or a miss."""
    return _cursor_fields(cursor)[0]


def _cursor_fields(cursor: str | None) -> tuple[int, int]:
    """(settled: read after this, read: the newest event already handled once)."""
    if not cursor:
        return -1, -1
    try:
        data = json.loads(cursor)
        after = int(data["after"])
        return after, int(data.get("read", after))
    except (ValueError, TypeError, KeyError, AttributeError):
        log.warning("incident sensor: unreadable cursor %r; rereading the event log from the start", cursor)
        return -1, -1


def make_cursor(after: int, read: int | None = None) -> str:
    return json.dumps({"v": CURSOR_VERSION, "after": after, "read": max(after, read if read is not None else after)})


def scan(
    instance: dg.DagsterInstance,
    asset_graph,
    store: IncidentStore,
    cursor: str | None,
    *,
    window_hours: float = 6.0,
    settle_seconds: float = 10.0,
    describe: bool = True,
    describer=None,
) -> ScanResult:
    """One evaluation of the incident sensor.

    ``describer(failures, asset_graph, store=, instance=, history=)`` words an incident;
    ``cei_assets.incidents.compose.describe_incident`` unless another is given.
    """
    after, already_read = _cursor_fields(cursor)
    outcomes = read_outcomes(instance, asset_graph, after, settle_seconds=settle_seconds)
    result = ScanResult(cursor=make_cursor(outcomes.settled_storage_id, max(already_read, outcomes.last_storage_id)),
                        events_read=outcomes.events_read, complete=outcomes.complete)
    for storage_id, why in outcomes.unreadable:
        if storage_id <= already_read:
            continue  # reread while settling: said once already
        log.error("incident sensor: Dagster event %s is unreadable (%s); skipped", storage_id, why)
        store.audit("event_unreadable", storage_id=storage_id, error=why)
    if not outcomes.empty:
        known = store.known_source_keys(sf.source_key for sf in outcomes.failures)
        new = [sf for sf in outcomes.failures if sf.source_key not in known]
        result.failures_new = len(new)
        if new:
            groups = group_failures(new, store.active_incidents(), asset_graph, dt.timedelta(hours=window_hours))
            opened, added = store.record(groups)
            result.opened, result.merged = opened, sorted(added)
        if outcomes.passes or outcomes.successes:
            result.resolved = _resolve_cleared(instance, store, outcomes)
    if describe:
        _describe_pending(instance, asset_graph, store, result, describer or _compose)
    return result


def _resolve_cleared(instance, store: IncidentStore, outcomes) -> list[int]:
    active = store.active_incidents()
    if not active:
        return []
    successes = with_steps(instance, outcomes.successes, partitions_with_open_step_failures(active))
    cleared = recoveries(active, outcomes.passes, successes)
    store.mark_recovered([(r.failure_id, r.storage_id, r.note) for r in cleared])
    resolved = []
    for incident_id, note in resolutions(active, cleared):
        try:
            store.resolve(incident_id, SYSTEM_ACTOR, note, auto=True)
            resolved.append(incident_id)
        except IncidentStateError:
            pass  # resolved by someone meanwhile: their note stands
    return resolved


def _describe_pending(instance, asset_graph, store: IncidentStore, result: ScanResult, describer) -> None:
    started = time.monotonic()
    for incident in sorted(store.incidents_pending_content(), key=lambda i: i.id):
        if time.monotonic() - started > DESCRIBE_BUDGET_SECONDS:
            break  # still pending: the next tick goes on
        try:
            with store.about(incident.id):
                content = describer(
                    [f.failure for f in incident.failures],
                    asset_graph,
                    store=store,
                    instance=instance,
                    history=store.past_incidents(exclude=incident.id),
                )
            fields = dict(
                title=content.title,
                signature=content.signature,
                severity=content.routing.severity,
                team=content.routing.team,
                impact=content.impact.to_dict(),
                routing=content.routing.to_dict(),
                similar=list(content.similar),
                report=content.report.to_dict(),
            )
        except Exception as error:  # principle 2: the incident stays, the error is said and audited
            text = f"{type(error).__name__}: {error}"
            log.error("incident %s could not be described: %s\n%s", incident.id, text, traceback.format_exc())
            store.set_describe_error(incident.id, text)
            result.describe_errors.append(incident.id)
            continue
        store.set_content(incident.id, **fields)
        result.described.append(incident.id)


def _compose(*args, **kwargs):
    from cei_assets.incidents.compose import describe_incident

    return describe_incident(*args, **kwargs)


def evaluate(context: dg.SensorEvaluationContext, incidents: IncidentStoreResource) -> ScanResult:
    """The sensor's evaluation, shared by the daemon and ``cei incidents scan``."""
    if context.repository_def is None:
        raise dg.DagsterInvariantViolationError("the incident sensor needs its code location's asset graph")
    result = scan(
        context.instance,
        context.repository_def.asset_graph,
        incidents.store(),
        context.cursor,
        window_hours=incidents.window_hours,
        settle_seconds=incidents.settle_seconds,
    )
    # Alerts for what was opened, merged, acknowledged or resolved since the last tick, then the
    # outbox (cei_assets/notifications/dispatch.py; never raises, bounded in time).
    notify_changes(incidents.store(), budget_seconds=NOTIFY_BUDGET_SECONDS)
    return result


@dg.sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Turns failed asset checks (blocking or warning, crashed included) and runs that failed for "
        "another reason into incidents: grouped, routed, described, audited; resolves them when the "
        "checks pass again. `cei incidents list` shows them."
    ),
)
def incident_sensor(context: dg.SensorEvaluationContext, incidents: IncidentStoreResource):
    result = evaluate(context, incidents)
    context.log.info(result.summary())
    # It requests no runs; the tick's message (shown in the UI) says what it did.
    return dg.SensorResult(cursor=result.cursor, skip_reason=result.summary())
