"""The incident store's database: its URL, its engine and its tables; the schema is migrated on open.

SQLite next to the Dagster instance by default (``$CEI_HOME/incidents.db``), PostgreSQL by
setting ``CEI_INCIDENTS_URL`` (``postgresql+psycopg2://user@host/db``): the same code on both.
The schema belongs to Alembic revisions in ``migrations/versions`` (``0001`` creates what is
below); every process brings the database to the newest revision the first time it opens it,
so a deployment upgrades itself and a later revision (``0002``, ...) only has to be added.

The tables below mirror the newest revision for the queries; they never create anything.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cei_assets import settings

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# Not Alembic's default name: the store may share a PostgreSQL database with Dagster's own
# storage, which keeps its revision in ``alembic_version``.
VERSION_TABLE = "cei_incidents_alembic_version"
# Taken for the duration of a migration on PostgreSQL, so two processes opening a fresh
# database at once (the daemon and the command line) do not both create the tables.
PG_MIGRATION_LOCK = 0x0CE1_1C1D


class IncidentStoreError(RuntimeError):
    """The incident store cannot be opened or used; the message says why and what to set."""


metadata = sa.MetaData()

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("status", sa.String(16), nullable=False),  # open | acknowledged | resolved
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
    sa.Column("auto_resolved", sa.Boolean, nullable=False, default=False),
    sa.Column("impact", sa.JSON),
    sa.Column("routing", sa.JSON),
    sa.Column("similar", sa.JSON),
    sa.Column("report", sa.JSON),
    sa.Column("content_pending", sa.Boolean, nullable=False, default=True),
    sa.Column("describe_error", sa.Text),
    sa.Column("describe_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("describe_after", sa.Float),
)

incident_failures = sa.Table(
    "incident_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("source_key", sa.String(400), nullable=False, unique=True),
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
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("incident_id", sa.Integer),
    sa.Column("actor", sa.String(200)),
    sa.Column("cost_usd", sa.Float),
    sa.Column("details", sa.JSON),
)

llm_cache = sa.Table(
    "llm_cache",
    metadata,
    sa.Column("evidence_hash", sa.String(128), primary_key=True),
    sa.Column("model", sa.String(200)),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

scan_cursors = sa.Table(
    "scan_cursors",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("cursor", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


def make_engine(url: str) -> sa.Engine:
    """An engine for the store's URL, with SQLite set up for several processes at once."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        shown = url if "@" not in url else url.split("://")[0] + "://..."  # never echo a password
        raise IncidentStoreError(
            f"CEI_INCIDENTS_URL is not a database URL: {shown!r} "
            "(expected e.g. sqlite:////path/incidents.db or postgresql+psycopg2://user@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})
        _serialise_sqlite_writers(engine)
        return engine
    if parsed.drivername == "postgresql" and not _importable("psycopg"):
        # SQLAlchemy 2.1 defaults to psycopg 3; Dagster's PostgreSQL storage brings psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        raise IncidentStoreError(f"cannot use the incident store at {parsed.render_as_string()}: {error}") from None


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _serialise_sqlite_writers(engine: sa.Engine) -> None:
    """WAL (readers never block the writer) and one transaction at a time, waiting, not failing.

    The daemon's sensor and the command line write the same file. Python's sqlite3 opens
    transactions lazily, so two of them could both read and then both try to write, one
    failing with "database is locked" whatever the timeout; ``BEGIN IMMEDIATE`` takes the
    write lock up front instead, and a second process waits for it (up to 30 s).
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration, in code: no alembic.ini to ship or find."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the newest by default). Safe to run from several processes."""
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), revision)
        connection.commit()


def downgrade(engine: sa.Engine, revision: str) -> None:
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), revision)
        connection.commit()


_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str | None = None) -> sa.Engine:
    """The migrated engine of ``url`` (default: ``CEI_INCIDENTS_URL`` or SQLite in CEI_HOME).

    One engine per URL and process; the migration runs the first time only.
    """
    url = url or settings.incidents_url()
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = make_engine(url)
            try:
                upgrade(engine)
            except sa.exc.OperationalError as error:
                engine.dispose()
                raise IncidentStoreError(
                    f"cannot open the incident store at {engine.url.render_as_string()}: "
                    f"{str(error.orig).strip() or error}"
                ) from None
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and processes that fork)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
