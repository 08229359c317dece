"""The notification outbox and the Slack message of each incident.

Revision ID: 0002
Revises: 0001

``notification_outbox``: every message CEI decides to send, written before it is tried, so a
message Slack cannot take now is delivered later; ``dedupe_key`` (unique) makes enqueueing the
same decision twice harmless, and a row is claimed (``pending`` -> ``sending``) by one
conditional UPDATE, so two flushes never deliver it twice.
``incident_messages``: the alert that stands for an incident in Slack (channel and ``ts``), so
later events update it or reply in its thread instead of posting anew.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(400), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # alert | update | reply | digest
        sa.Column("event", sa.String(32)),  # opened | merged | acknowledged | resolved | digest
        sa.Column("incident_id", sa.Integer),
        sa.Column("channel", sa.String(200)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("blocks", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),  # pending | sending | delivered
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("not_before", sa.Float),  # quiet hours, or Slack's Retry-After
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("claimed_at", sa.Float),
        sa.Column("delivered_at", sa.Float),
        sa.Column("delivered_via", sa.String(16)),  # slack_api | webhook | files
        sa.Column("delivered_ts", sa.String(64)),
        sa.UniqueConstraint("dedupe_key", name="uq_notification_outbox_dedupe_key"),
        sa.CheckConstraint("status IN ('pending', 'sending', 'delivered')", name="ck_notification_outbox_status"),
    )
    op.create_index("ix_notification_outbox_status", "notification_outbox", ["status", "id"])
    op.create_index("ix_notification_outbox_incident_id", "notification_outbox", ["incident_id"])

    op.create_table(
        "incident_messages",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("outbox_id", sa.Integer, sa.ForeignKey("notification_outbox.id"), nullable=False),
        sa.Column("channel", sa.String(200)),  # as asked: a name (#cei-market-data) or an id
        sa.Column("channel_id", sa.String(64)),  # as Slack answered; chat.update needs it
        sa.Column("ts", sa.String(64)),  # null until delivered
        sa.Column("transport", sa.String(16)),
        sa.Column("team", sa.String(200)),
        sa.Column("checks", sa.JSON),  # what the alert was about, for suppression windows
        sa.Column("failures_notified", sa.Integer),  # failures already told: a merge names the new ones
        sa.Column("shown_state", sa.String(400)),  # what the message shows: an update only when it changes
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
    )
    op.create_index("ix_incident_messages_created_at", "incident_messages", ["created_at"])


def downgrade() -> None:
    op.drop_table("incident_messages")
    op.drop_table("notification_outbox")
