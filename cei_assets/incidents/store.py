"""The incident store: incidents and their lifecycle, the audit log, the LLM cache and spend.

An incident is open, then acknowledged, then resolved (by a person, or by itself when its
failing checks pass again). Its failures are kept one row each, keyed by where they came from
in Dagster (``source_key``, unique), so reading the same events twice never adds one twice.

The audit log is append-only (the database refuses UPDATE and DELETE on it): every decision
lands there — checks that halt, overrides, incidents opened, merged, acknowledged and
resolved, every LLM call with its tokens and cost, every notification sent. ``audit()`` is
the one way in, for every part of CEI.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import dagster as dg
import sqlalchemy as sa

from cei_assets.incidents import db
from cei_assets.incidents.facts import Failure, PastIncident, Report

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
ACTIVE = (OPEN, ACKNOWLEDGED)
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)
# Who acts when CEI itself decides (auto-resolution, the sensor opening an incident).
SYSTEM_ACTOR = "cei"
# After a failed description, the first retry waits this long; each next one twice as long.
DESCRIBE_RETRY_SECONDS = 60.0


class UnknownIncident(LookupError):
    def __init__(self, incident_id: int):
        super().__init__(f"no incident {incident_id}")
        self.incident_id = incident_id


class IncidentStateError(ValueError):
    """A lifecycle step that does not apply (acknowledging a resolved incident, ...)."""


@dataclass(frozen=True)
class SourcedFailure:
    """A failure with where it came from in Dagster: what makes reading it twice harmless.

    ``source_key`` is unique in the store (``check:<event storage id>`` for a check evaluation,
    ``crashed:<run>:<asset>/<check>:<partition>``, ``step:<run>:<step>``, ``run:<run>``);
    ``storage_id`` is the Dagster event storage id that revealed it, which also orders it
    against a later passing evaluation.
    """

    failure: Failure
    source_key: str
    storage_id: int | None = None


@dataclass
class StoredFailure:
    id: int
    incident_id: int
    source_key: str
    storage_id: int | None
    failure: Failure
    recovered_at: float | None = None
    recovery_note: str | None = None

    @property
    def recovered(self) -> bool:
        return self.recovered_at is not None


@dataclass
class Incident:
    id: int
    status: str
    title: str
    signature: str | None
    severity: str | None
    team: str | None
    partition: str | None
    opened_at: float
    updated_at: float
    last_failure_at: float
    acknowledged_at: float | None
    acknowledged_by: str | None
    resolved_at: float | None
    resolved_by: str | None
    resolution: str | None
    auto_resolved: bool
    impact: dict | None
    routing: dict | None
    similar: list | None
    report: dict | None
    content_pending: bool
    describe_error: str | None
    describe_attempts: int = 0
    describe_after: float | None = None
    failures: list[StoredFailure] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def assets(self) -> list[str]:
        return _unique(f.failure.asset_key for f in self.failures if f.failure.asset_key)

    @property
    def checks(self) -> list[str]:
        return _unique(f.failure.check_id for f in self.failures if f.failure.kind == "check")

    @property
    def run_ids(self) -> list[str]:
        return _unique(f.failure.run_id for f in self.failures if f.failure.run_id)

    @property
    def partitions(self) -> list[str | None]:
        return _unique(f.failure.partition for f in self.failures)

    @property
    def halts(self) -> bool:
        """Whether any of its failures stops downstream assets (a blocking, non-warning failure)."""
        return any(f.failure.blocking and not f.failure.warn_only for f in self.failures)

    @property
    def halted(self) -> list[str] | None:
        """Assets halted, from the lineage impact; None when the impact is not known."""
        return list(self.impact.get("halted", [])) if self.impact is not None else None

    @property
    def degraded(self) -> list[str] | None:
        return list(self.impact.get("degraded", [])) if self.impact is not None else None

    def report_markdown(self) -> str | None:
        if not self.report:
            return None
        fields = {f.name for f in dataclasses.fields(Report)}
        return Report(**{k: v for k, v in self.report.items() if k in fields}).to_markdown()

    def summary(self) -> dict[str, Any]:
        """The shape of ``cei incidents list --json``."""
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "team": self.team,
            "assets": self.assets,
            "checks": self.checks,
            "halted": self.halted,
            "degraded": self.degraded,
            "report": self.report_markdown(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything the store knows of it (``cei incidents show --json``)."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "failures"}
        data.update(self.summary())
        data["report_sections"] = self.report
        data["partitions"] = self.partitions
        data["run_ids"] = self.run_ids
        data["failures"] = [
            {
                **f.failure.to_dict(),
                "check_id": f.failure.check_id,
                "source_key": f.source_key,
                "storage_id": f.storage_id,
                "recovered_at": f.recovered_at,
                "recovery_note": f.recovery_note,
            }
            for f in self.failures
        ]
        return data


@dataclass
class AuditEntry:
    id: int
    at: float
    event: str
    incident_id: int | None
    actor: str | None
    cost_usd: float | None
    details: dict


_incident_context: contextvars.ContextVar[int | None] = contextvars.ContextVar("cei_incident", default=None)


class IncidentStore:
    """Incidents, failures, the audit log and the LLM cache in one SQL database."""

    def __init__(self, url: str | None = None, *, engine: sa.Engine | None = None):
        self.engine = engine if engine is not None else db.engine_for(url)

    @classmethod
    def from_environment(cls) -> IncidentStore:
        return cls()

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # ------------------------------------------------------------------ recording failures

    def known_source_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(dict.fromkeys(keys))
        known: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(keys, 500):
                rows = conn.execute(
                    sa.select(db.incident_failures.c.source_key).where(db.incident_failures.c.source_key.in_(chunk))
                )
                known.update(r[0] for r in rows)
        return known

    def open_incident(self, failures: Sequence[SourcedFailure], *, title: str | None = None,
                      now: float | None = None) -> int:
        """Open one incident holding ``failures`` (which must be new); returns its id."""
        opened, _ = self.record([(None, list(failures))], titles={0: title} if title else None, now=now)
        return opened[0]

    def add_failures(self, incident_id: int, failures: Sequence[SourcedFailure], *, now: float | None = None) -> int:
        """Attach failures to an incident; returns how many were new."""
        _, added = self.record([(incident_id, list(failures))], now=now)
        return added.get(incident_id, 0)

    def record(self, groups: Sequence[tuple[int | None, list[SourcedFailure]]], *,
               titles: dict[int, str] | None = None, now: float | None = None
               ) -> tuple[list[int], dict[int, int]]:
        """Store a batch of grouped failures in one transaction, with their audit entries.

        Each group is ``(incident id, failures)`` to attach to an existing incident, or
        ``(None, failures)`` to open a new one. Failures already stored (by ``source_key``) are
        skipped, so the batch may be replayed. Returns the ids opened (in group order, for the
        groups that opened one) and, per existing incident, how many failures were added.
        """
        now = time.time() if now is None else now
        titles = titles or {}
        opened: list[int] = []
        added: dict[int, int] = {}
        with self.engine.begin() as conn:
            wanted = [sf.source_key for _, group in groups for sf in group]
            known: set[str] = set()
            for chunk in _chunks(list(dict.fromkeys(wanted)), 500):
                known.update(
                    r[0] for r in conn.execute(
                        sa.select(db.incident_failures.c.source_key).where(db.incident_failures.c.source_key.in_(chunk))
                    )
                )
            for index, (incident_id, group) in enumerate(groups):
                fresh = []
                for sf in group:
                    if sf.source_key not in known:
                        known.add(sf.source_key)
                        fresh.append(sf)
                if not fresh:
                    continue
                last_failure_at = max(sf.failure.evaluated_at or now for sf in fresh)
                if incident_id is None:
                    first = fresh[0].failure
                    incident_id = conn.execute(
                        db.incidents.insert().values(
                            status=OPEN,
                            title=titles.get(index) or default_title([sf.failure for sf in fresh]),
                            partition=first.partition,
                            opened_at=now,
                            updated_at=now,
                            last_failure_at=last_failure_at,
                            auto_resolved=False,
                            content_pending=True,
                        )
                    ).inserted_primary_key[0]
                    opened.append(incident_id)
                    event = "incident_opened"
                else:
                    row = conn.execute(
                        sa.select(db.incidents.c.status, db.incidents.c.last_failure_at).where(db.incidents.c.id == incident_id)
                    ).first()
                    if row is None:
                        raise UnknownIncident(incident_id)
                    if row.status == RESOLVED:
                        raise IncidentStateError(f"incident {incident_id} is resolved: failures open a new incident")
                    conn.execute(
                        db.incidents.update().where(db.incidents.c.id == incident_id).values(
                            updated_at=now, last_failure_at=max(row.last_failure_at, last_failure_at),
                            content_pending=True, describe_after=None,
                        )
                    )
                    added[incident_id] = added.get(incident_id, 0) + len(fresh)
                    event = "incident_merged"
                conn.execute(db.incident_failures.insert(), [_failure_row(incident_id, sf) for sf in fresh])
                audits = [_audit_row(now, _failure_audit_event(sf.failure), incident_id, SYSTEM_ACTOR, _failure_audit(sf))
                          for sf in fresh]
                audits.append(_audit_row(now, event, incident_id, SYSTEM_ACTOR, {
                    "failures": [sf.failure.check_id for sf in fresh],
                    "runs": _unique(sf.failure.run_id for sf in fresh),
                    "partitions": _unique(sf.failure.partition for sf in fresh),
                }))
                conn.execute(db.audit_log.insert(), audits)
        return opened, added

    def set_content(self, incident_id: int, *, title: str, signature: str | None, severity: str | None,
                    team: str | None, impact: dict | None, routing: dict | None, similar: list | None,
                    report: dict | None) -> None:
        """What the incident's describer found: words, impact and routing (never its lifecycle)."""
        with self.engine.begin() as conn:
            conn.execute(
                db.incidents.update().where(db.incidents.c.id == incident_id).values(
                    title=title, signature=signature, severity=severity, team=team, impact=_json(impact),
                    routing=_json(routing), similar=_json(similar), report=_json(report),
                    content_pending=False, describe_error=None, describe_attempts=0, describe_after=None,
                    updated_at=time.time(),
                )
            )

    def set_describe_error(self, incident_id: int, error: str, *, now: float | None = None) -> float:
        """The describer failed: keep the incident, say why, and try again later.

        Retries back off (1, 2, 4 ... 60 minutes), so a configuration error fixed later still
        gets the incident described; the audit log has one entry per distinct error.
        Returns when the next attempt is due.
        """
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            row = self._row(conn, incident_id)
            attempts = (row.describe_attempts or 0) + 1
            retry_at = now + DESCRIBE_RETRY_SECONDS * min(2 ** (attempts - 1), 60)
            conn.execute(
                db.incidents.update().where(db.incidents.c.id == incident_id).values(
                    content_pending=True, describe_error=error, describe_attempts=attempts, describe_after=retry_at,
                    updated_at=now,
                )
            )
            if error != row.describe_error:
                conn.execute(db.audit_log.insert().values(
                    _audit_row(now, "describe_failed", incident_id, SYSTEM_ACTOR, {"error": error, "attempt": attempts})
                ))
        return retry_at

    def mark_recovered(self, recoveries: Sequence[tuple[int, int | None, str]], *, now: float | None = None) -> None:
        """Failures that passed again: ``(failure row id, storage id of the pass, note)``."""
        if not recoveries:
            return
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            for failure_id, storage_id, note in recoveries:
                conn.execute(
                    db.incident_failures.update()
                    .where(db.incident_failures.c.id == failure_id, db.incident_failures.c.recovered_at.is_(None))
                    .values(recovered_at=now, recovered_by_storage_id=storage_id, recovery_note=note)
                )

    # ------------------------------------------------------------------ lifecycle

    def acknowledge(self, incident_id: int, by: str, *, now: float | None = None) -> Incident:
        by = _actor(by)
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            row = self._row(conn, incident_id)
            if row.status == ACKNOWLEDGED:
                raise IncidentStateError(f"incident {incident_id} is already acknowledged (by {row.acknowledged_by})")
            if row.status == RESOLVED:
                raise IncidentStateError(f"incident {incident_id} is resolved (by {row.resolved_by}): nothing to acknowledge")
            conn.execute(
                db.incidents.update().where(db.incidents.c.id == incident_id).values(
                    status=ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by, updated_at=now
                )
            )
            conn.execute(db.audit_log.insert().values(_audit_row(now, "incident_acknowledged", incident_id, by, {})))
        return self.get(incident_id)

    def resolve(self, incident_id: int, by: str, note: str, *, auto: bool = False, now: float | None = None) -> Incident:
        """Close an incident with a note saying what was done (or, when ``auto``, what passed again)."""
        by = _actor(by)
        note = (note or "").strip()
        if not note:
            raise IncidentStateError("a resolution needs a note saying what was done")
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            row = self._row(conn, incident_id)
            if row.status == RESOLVED:
                raise IncidentStateError(f"incident {incident_id} is already resolved (by {row.resolved_by})")
            conn.execute(
                db.incidents.update().where(db.incidents.c.id == incident_id).values(
                    status=RESOLVED, resolved_at=now, resolved_by=by, resolution=note, auto_resolved=auto,
                    updated_at=now,
                )
            )
            conn.execute(db.audit_log.insert().values(
                _audit_row(now, "incident_resolved", incident_id, by, {"note": note, "auto": auto, "from": row.status})
            ))
        return self.get(incident_id)

    # ------------------------------------------------------------------ reading

    def get(self, incident_id: int) -> Incident:
        found = self._load(db.incidents.c.id == incident_id)
        if not found:
            raise UnknownIncident(incident_id)
        return found[0]

    def list_incidents(self, status: str | Sequence[str] | None = None, *, limit: int | None = None) -> list[Incident]:
        """Newest first; ``status`` one of open, acknowledged, resolved (or several)."""
        statuses = [status] if isinstance(status, str) else list(status or [])
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise IncidentStateError(f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}")
        where = db.incidents.c.status.in_(statuses) if statuses else sa.true()
        return self._load(where, limit=limit)

    def active_incidents(self) -> list[Incident]:
        return self.list_incidents(list(ACTIVE))

    def incidents_pending_content(self, *, now: float | None = None) -> list[Incident]:
        """New or grown incidents to describe, and failed descriptions whose retry is due."""
        now = time.time() if now is None else now
        return self._load(sa.and_(
            db.incidents.c.content_pending.is_(True),
            sa.or_(db.incidents.c.describe_after.is_(None), db.incidents.c.describe_after <= now),
        ))

    def past_incidents(self, *, exclude: int | None = None, limit: int = 1000) -> list[PastIncident]:
        """What similarity and the assignee suggestion learn from: earlier incidents, newest first."""
        where = db.incidents.c.id != exclude if exclude is not None else sa.true()
        return [
            PastIncident(
                id=i.id, title=i.title, check_ids=_unique(f.failure.check_id for f in i.failures),
                assets=i.assets, signature=i.signature or "", status=i.status, resolved_by=i.resolved_by,
                resolution=i.resolution, opened_at=i.opened_at, resolved_at=i.resolved_at,
            )
            for i in self._load(where, limit=limit)
        ]

    def _row(self, conn, incident_id: int):
        row = conn.execute(sa.select(db.incidents).where(db.incidents.c.id == incident_id)).first()
        if row is None:
            raise UnknownIncident(incident_id)
        return row

    def _load(self, where, limit: int | None = None) -> list[Incident]:
        query = sa.select(db.incidents).where(where).order_by(db.incidents.c.id.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            failures: dict[int, list[StoredFailure]] = {}
            for chunk in _chunks([r["id"] for r in rows], 500):
                for f in conn.execute(
                    sa.select(db.incident_failures)
                    .where(db.incident_failures.c.incident_id.in_(chunk))
                    .order_by(db.incident_failures.c.id)
                ).mappings():
                    failures.setdefault(f["incident_id"], []).append(_stored_failure(f))
        return [
            Incident(
                **{k: row[k] for k in _INCIDENT_FIELDS},
                auto_resolved=bool(row["auto_resolved"]),
                content_pending=bool(row["content_pending"]),
                describe_attempts=row["describe_attempts"] or 0,
                failures=failures.get(row["id"], []),
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ audit log

    def audit(self, event: str, **details: Any) -> None:
        """Append one decision to the audit log.

        ``incident_id`` and ``actor`` among the details go to their own columns (the incident
        defaults to the one being described, see ``about``); ``cost_usd`` too, for the spend cap.
        """
        incident_id = details.pop("incident_id", None) or _incident_context.get()
        actor = details.pop("actor", None)
        with self.engine.begin() as conn:
            conn.execute(db.audit_log.insert().values(_audit_row(time.time(), event, incident_id, actor, details)))

    @contextlib.contextmanager
    def about(self, incident_id: int) -> Iterator[None]:
        """Audit entries written inside (by the describer: LLM calls) belong to this incident."""
        token = _incident_context.set(incident_id)
        try:
            yield
        finally:
            _incident_context.reset(token)

    def audit_entries(self, *, incident_id: int | None = None, event: str | None = None) -> list[AuditEntry]:
        query = sa.select(db.audit_log).order_by(db.audit_log.c.id)
        if incident_id is not None:
            query = query.where(db.audit_log.c.incident_id == incident_id)
        if event is not None:
            query = query.where(db.audit_log.c.event == event)
        with self.engine.connect() as conn:
            return [
                AuditEntry(id=r.id, at=r.at, event=r.event, incident_id=r.incident_id, actor=r.actor,
                           cost_usd=r.cost_usd, details=r.details or {})
                for r in conn.execute(query)
            ]

    # ------------------------------------------------------------------ LLM cache and spend

    def get_report(self, evidence_hash: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.llm_cache.c.report).where(db.llm_cache.c.evidence_hash == evidence_hash)).first()
        return dict(row[0]) if row else None

    def put_report(self, evidence_hash: str, report: dict, model: str) -> None:
        values = {"model": model, "report": _json(report), "created_at": time.time()}
        with self.engine.begin() as conn:
            updated = conn.execute(
                db.llm_cache.update().where(db.llm_cache.c.evidence_hash == evidence_hash).values(**values)
            ).rowcount
            if not updated:
                conn.execute(db.llm_cache.insert().values(evidence_hash=evidence_hash, **values))

    def llm_spend_today(self) -> float:
        """USD spent on LLM calls since midnight UTC, from the ``llm_call`` audit entries."""
        midnight = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(db.audit_log.c.cost_usd), 0.0)).where(
                    db.audit_log.c.event == "llm_call", db.audit_log.c.at >= midnight
                )
            ).scalar_one()
        return float(total)

    # ------------------------------------------------------------------ scan cursors

    def get_cursor(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.scan_cursors.c.cursor).where(db.scan_cursors.c.name == name)).first()
        return row[0] if row else None

    def set_cursor(self, name: str, cursor: str) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            updated = conn.execute(
                db.scan_cursors.update().where(db.scan_cursors.c.name == name).values(cursor=cursor, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(db.scan_cursors.insert().values(name=name, cursor=cursor, updated_at=now))


class IncidentStoreResource(dg.ConfigurableResource):
    """The incident store and how failures are grouped, for the incident sensor.

    ``url`` defaults to ``CEI_INCIDENTS_URL``, else SQLite next to the Dagster instance
    (``$CEI_HOME/incidents.db``). ``window_hours``: failures of the same root asset and
    partition within this window are one incident. ``settle_seconds``: how long the sensor
    keeps re-reading recent events, for writers that commit out of order (PostgreSQL).
    """

    url: Optional[str] = None
    window_hours: float = 6.0
    settle_seconds: float = 10.0

    def store(self) -> IncidentStore:
        return IncidentStore(self.url or None)


# ---------------------------------------------------------------------- helpers

_INCIDENT_FIELDS = (
    "id", "status", "title", "signature", "severity", "team", "partition", "opened_at", "updated_at",
    "last_failure_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "resolution",
    "impact", "routing", "similar", "report", "describe_error", "describe_after",
)


def default_title(failures: Sequence[Failure]) -> str:
    """A title from the failures alone, until (or when) the describer cannot give one."""
    first = failures[0]
    if first.kind == "check":
        what = f"{first.check_id} {'warned' if first.warn_only else 'failed'}"
    elif first.kind == "step_error":
        what = f"step {first.step_key} failed"
    else:
        what = f"run {first.run_id[:8]} failed"
    if first.partition:
        what += f" for {first.partition}"
    others = len({f.check_id for f in failures}) - 1
    return what + (f" (+{others} more)" if others > 0 else "")


def _failure_audit_event(failure: Failure) -> str:
    if failure.kind == "check":
        return "check_halt" if failure.blocking and not failure.warn_only else "check_warning"
    return "step_failure" if failure.kind == "step_error" else "run_failure"


def _failure_audit(sf: SourcedFailure) -> dict:
    f = sf.failure
    return {
        "check": f.check_id, "asset": f.asset_key, "partition": f.partition, "run_id": f.run_id,
        "blocking": f.blocking, "warn_only": f.warn_only, "crashed": f.crashed,
        "description": f.description, "source_key": sf.source_key, "storage_id": sf.storage_id,
    }


def _failure_row(incident_id: int, sf: SourcedFailure) -> dict:
    f = sf.failure
    return {
        "incident_id": incident_id, "source_key": sf.source_key, "storage_id": sf.storage_id, "kind": f.kind,
        "run_id": f.run_id or "", "partition": f.partition, "asset_key": f.asset_key, "check_name": f.check_name,
        "step_key": f.step_key, "blocking": bool(f.blocking), "warn_only": bool(f.warn_only),
        "crashed": bool(f.crashed), "description": f.description or "", "details": _json(dict(f.metadata)),
        "evaluated_at": float(f.evaluated_at or 0.0),
    }


def _stored_failure(row) -> StoredFailure:
    failure = Failure(
        kind=row["kind"], run_id=row["run_id"], partition=row["partition"], asset_key=row["asset_key"],
        check_name=row["check_name"], blocking=bool(row["blocking"]), warn_only=bool(row["warn_only"]),
        description=row["description"], metadata=row["details"] or {}, evaluated_at=row["evaluated_at"],
        step_key=row["step_key"], crashed=bool(row["crashed"]),
    )
    return StoredFailure(
        id=row["id"], incident_id=row["incident_id"], source_key=row["source_key"], storage_id=row["storage_id"],
        failure=failure, recovered_at=row["recovered_at"], recovery_note=row["recovery_note"],
    )


def _audit_row(at: float, event: str, incident_id: int | None, actor: str | None, details: dict) -> dict:
    cost = details.get("cost_usd")
    cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost) else None
    return {"at": at, "event": event, "incident_id": incident_id, "actor": actor, "cost_usd": cost,
            "details": _json(details)}


def _json(value: Any) -> Any:
    """Plain JSON values (what the JSON columns hold): dataclasses, dates and decimals as text."""
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _actor(by: str | None) -> str:
    by = (by or "").strip()
    if not by:
        raise IncidentStateError("say who: --by NAME")
    return by


def _unique(values: Iterable) -> list:
    return list(dict.fromkeys(values))


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
