"""The outbox: every message CEI decides to send, kept in the incident store until it is delivered.

A message is written here before anyone tries to send it, so a crash, a Slack outage or a
rate limit never loses it. Delivery is exactly once in the normal course:

- enqueueing is idempotent: a message has a ``dedupe_key`` (unique in the table) naming the
  decision it carries (``incident:12:opened:alert``), so deciding twice enqueues once;
- a flush claims a row with one conditional UPDATE (``pending`` -> ``sending``); only the
  flush whose UPDATE changed the row sends it, so two flushes at once never both send it;
- after Slack's answer the row becomes ``delivered`` in the same transaction that records the
  message's ``ts``.

The one gap no outbox can close: a process that dies after Slack accepted a message and before
its commit leaves the row ``sending``; after ``STALE_CLAIM_SECONDS`` it is sent again (at least
once rather than lost). The schema belongs to the incident store's Alembic revision ``0002``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

PENDING, SENDING, DELIVERED = "pending", "sending", "delivered"
ALERT, UPDATE, REPLY, DIGEST = "alert", "update", "reply", "digest"
# A claim older than this belongs to a process that died mid-send (requests time out in 10 s).
STALE_CLAIM_SECONDS = 600.0

metadata = sa.MetaData()

outbox_table = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedupe_key", sa.String(400), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("event", sa.String(32)),
    sa.Column("incident_id", sa.Integer),
    sa.Column("channel", sa.String(200)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("blocks", sa.JSON),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("not_before", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("claimed_at", sa.Float),
    sa.Column("delivered_at", sa.Float),
    sa.Column("delivered_via", sa.String(16)),
    sa.Column("delivered_ts", sa.String(64)),
)

messages_table = sa.Table(
    "incident_messages",
    metadata,
    sa.Column("incident_id", sa.Integer, primary_key=True),
    sa.Column("outbox_id", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(200)),
    sa.Column("channel_id", sa.String(64)),
    sa.Column("ts", sa.String(64)),
    sa.Column("transport", sa.String(16)),
    sa.Column("team", sa.String(200)),
    sa.Column("checks", sa.JSON),
    sa.Column("failures_notified", sa.Integer),
    sa.Column("shown_state", sa.String(400)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
)


@dataclass
class Message:
    """One message to send. ``kind``: alert (the incident's own message), update (edit it),
    reply (in its thread), digest."""

    dedupe_key: str
    kind: str
    text: str
    blocks: list | None = None
    channel: str | None = None
    incident_id: int | None = None
    event: str | None = None
    not_before: float | None = None
    # For alerts: what suppression windows compare against later alerts.
    team: str | None = None
    checks: list[str] = field(default_factory=list)
    # Alerts and updates: how many of the incident's failures the message tells of, and the
    # state it shows (severity, status, ...), so an update is made only when that changes.
    failures_seen: int | None = None
    shown_state: str | None = None


@dataclass
class OutboxRow:
    id: int
    dedupe_key: str
    kind: str
    event: str | None
    incident_id: int | None
    channel: str | None
    text: str
    blocks: list | None
    status: str
    created_at: float
    not_before: float | None
    attempts: int
    last_error: str | None
    claimed_at: float | None
    delivered_at: float | None
    delivered_via: str | None
    delivered_ts: str | None


@dataclass
class IncidentMessage:
    """The alert standing for an incident in Slack; ``ts`` is None until it is delivered."""

    incident_id: int
    outbox_id: int
    channel: str | None
    channel_id: str | None
    ts: str | None
    transport: str | None
    team: str | None
    checks: list[str]
    created_at: float
    delivered_at: float | None
    failures_notified: int = 0
    shown_state: str | None = None

    @property
    def delivered(self) -> bool:
        return self.delivered_at is not None


class Outbox:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # ------------------------------------------------------------------ enqueue

    def enqueue(self, messages: Sequence[Message], *, now: float | None = None) -> list[int]:
        """Write messages (in order, one transaction); returns the ids of those that were new."""
        now = time.time() if now is None else now
        new: list[int] = []
        try:
            with self.engine.begin() as conn:
                for message in messages:
                    exists = conn.execute(
                        sa.select(outbox_table.c.id).where(outbox_table.c.dedupe_key == message.dedupe_key)
                    ).first()
                    if exists:
                        continue
                    row_id = conn.execute(outbox_table.insert().values(
                        dedupe_key=message.dedupe_key, kind=message.kind, event=message.event,
                        incident_id=message.incident_id, channel=message.channel, text=message.text,
                        blocks=message.blocks, status=PENDING, created_at=now, not_before=message.not_before,
                        attempts=0,
                    )).inserted_primary_key[0]
                    new.append(row_id)
                    if message.kind == ALERT and message.incident_id is not None:
                        conn.execute(messages_table.insert().values(
                            incident_id=message.incident_id, outbox_id=row_id, channel=message.channel,
                            team=message.team, checks=list(message.checks), created_at=now,
                            failures_notified=message.failures_seen or 0, shown_state=message.shown_state,
                        ))
                    elif message.kind == UPDATE:
                        values = {"shown_state": message.shown_state}
                        if message.failures_seen is not None:
                            values["failures_notified"] = message.failures_seen
                        conn.execute(messages_table.update().where(
                            messages_table.c.incident_id == message.incident_id).values(**values))
        except sa.exc.IntegrityError:
            # Another process enqueued the same decision between our check and our insert
            # (PostgreSQL; SQLite serialises writers): theirs stands, ours is a duplicate.
            return []
        return new

    # ------------------------------------------------------------------ reading

    def message_of(self, incident_id: int) -> IncidentMessage | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(messages_table).where(messages_table.c.incident_id == incident_id)).first()
        return _message(row) if row else None

    def alerts_without_severity(self) -> list[int]:
        """Incidents alerted before their severity was known (their alert says "severity unknown")."""
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(
                sa.select(messages_table.c.incident_id).where(messages_table.c.shown_state.like("None|%")))]

    def alerts_since(self, since: float) -> list[IncidentMessage]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(messages_table).where(messages_table.c.created_at >= since)
                .order_by(messages_table.c.created_at.desc())
            ).all()
        return [_message(r) for r in rows]

    def rows(self, *, status: str | Sequence[str] | None = None, dedupe_key: str | None = None,
             incident_id: int | None = None) -> list[OutboxRow]:
        query = sa.select(outbox_table).order_by(outbox_table.c.id)
        if status is not None:
            query = query.where(outbox_table.c.status.in_([status] if isinstance(status, str) else list(status)))
        if dedupe_key is not None:
            query = query.where(outbox_table.c.dedupe_key == dedupe_key)
        if incident_id is not None:
            query = query.where(outbox_table.c.incident_id == incident_id)
        with self.engine.connect() as conn:
            return [OutboxRow(**row._mapping) for row in conn.execute(query)]

    def undelivered(self, limit: int = 500) -> list[OutboxRow]:
        """Pending rows in the order they were decided (due or not: order is per incident)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbox_table).where(outbox_table.c.status == PENDING).order_by(outbox_table.c.id).limit(limit)
            ).all()
        return [OutboxRow(**row._mapping) for row in rows]

    # ------------------------------------------------------------------ delivery bookkeeping

    def release_stale_claims(self, now: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                outbox_table.update()
                .where(outbox_table.c.status == SENDING, outbox_table.c.claimed_at < now - STALE_CLAIM_SECONDS)
                .values(status=PENDING, last_error="the process sending it stopped before Slack's answer was recorded")
            ).rowcount

    def claim(self, row_id: int, now: float) -> bool:
        """Take the row for sending; True for exactly one caller."""
        with self.engine.begin() as conn:
            return conn.execute(
                outbox_table.update()
                .where(outbox_table.c.id == row_id, outbox_table.c.status == PENDING)
                .values(status=SENDING, claimed_at=now, attempts=outbox_table.c.attempts + 1)
            ).rowcount == 1

    def mark_delivered(self, row: OutboxRow, *, now: float, via: str, channel_id: str | None, ts: str | None,
                       note: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                outbox_table.update().where(outbox_table.c.id == row.id, outbox_table.c.status == SENDING).values(
                    status=DELIVERED, delivered_at=now, delivered_via=via, delivered_ts=ts, last_error=note,
                )
            )
            if row.kind == ALERT and row.incident_id is not None:
                conn.execute(
                    messages_table.update()
                    .where(messages_table.c.incident_id == row.incident_id, messages_table.c.outbox_id == row.id)
                    .values(channel_id=channel_id, ts=ts, transport=via, delivered_at=now)
                )

    def mark_failed(self, row: OutboxRow, *, error: str, not_before: float | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                outbox_table.update().where(outbox_table.c.id == row.id, outbox_table.c.status == SENDING).values(
                    status=PENDING, last_error=error, not_before=not_before, claimed_at=None,
                )
            )


def _message(row: Any) -> IncidentMessage:
    m = row._mapping
    return IncidentMessage(
        incident_id=m["incident_id"], outbox_id=m["outbox_id"], channel=m["channel"], channel_id=m["channel_id"],
        ts=m["ts"], transport=m["transport"], team=m["team"], checks=list(m["checks"] or []),
        created_at=m["created_at"], delivered_at=m["delivered_at"], failures_notified=m["failures_notified"] or 0,
        shown_state=m["shown_state"],
    )
