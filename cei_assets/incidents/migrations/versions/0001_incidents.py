"""Incidents, their failures, the append-only audit log, the LLM response cache, scan cursors.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_APPEND_ONLY = "the audit log is append-only"


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("signature", sa.Text),
        sa.Column("severity", sa.String(2)),
        sa.Column("team", sa.String(200)),
        sa.Column("partition", sa.String(64)),
        sa.Column("opened_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("last_failure_at", sa.Float, nullable=False),
        sa.Column("acknowledged_at", sa.Float),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("resolved_at", sa.Float),
        sa.Column("resolved_by", sa.String(200)),
        sa.Column("resolution", sa.Text),
        sa.Column("auto_resolved", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("impact", sa.JSON),
        sa.Column("routing", sa.JSON),
        sa.Column("similar", sa.JSON),
        sa.Column("report", sa.JSON),
        sa.Column("content_pending", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("describe_error", sa.Text),
        sa.Column("describe_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("describe_after", sa.Float),  # after a failure: when to try again
        sa.CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name="ck_incidents_status"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])

    op.create_table(
        "incident_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        # What makes a failure itself: the Dagster event storage id of a check evaluation, or
        # run + step for what a failed run reveals. Unique: a re-read never adds it twice.
        sa.Column("source_key", sa.String(400), nullable=False),
        sa.Column("storage_id", sa.BigInteger),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("partition", sa.String(64)),
        sa.Column("asset_key", sa.String(400)),
        sa.Column("check_name", sa.String(400)),
        sa.Column("step_key", sa.String(400)),
        sa.Column("blocking", sa.Boolean, nullable=False),
        sa.Column("warn_only", sa.Boolean, nullable=False),
        sa.Column("crashed", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("details", sa.JSON),
        sa.Column("evaluated_at", sa.Float, nullable=False),
        sa.Column("recovered_at", sa.Float),
        sa.Column("recovered_by_storage_id", sa.BigInteger),
        sa.Column("recovery_note", sa.Text),
        sa.UniqueConstraint("source_key", name="uq_incident_failures_source_key"),
    )
    op.create_index("ix_incident_failures_incident_id", "incident_failures", ["incident_id"])
    op.create_index("ix_incident_failures_check", "incident_failures", ["asset_key", "check_name", "partition"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.Integer),
        sa.Column("actor", sa.String(200)),
        sa.Column("cost_usd", sa.Float),
        sa.Column("details", sa.JSON),
    )
    op.create_index("ix_audit_log_event_at", "audit_log", ["event", "at"])
    op.create_index("ix_audit_log_incident_id", "audit_log", ["incident_id"])

    op.create_table(
        "llm_cache",
        sa.Column("evidence_hash", sa.String(128), primary_key=True),
        sa.Column("model", sa.String(200)),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )

    op.create_table(
        "scan_cursors",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("cursor", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )

    # Append-only in the database itself, not only in the code that writes it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION cei_audit_log_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{_APPEND_ONLY}: % refused', TG_OP;
            END
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION cei_audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION cei_audit_log_append_only()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{operation.lower()} BEFORE {operation} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}: {operation} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS cei_audit_log_append_only()")
    op.drop_table("scan_cursors")
    op.drop_table("llm_cache")
    op.drop_table("audit_log")
    op.drop_table("incident_failures")
    op.drop_table("incidents")
