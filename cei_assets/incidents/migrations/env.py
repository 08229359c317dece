"""Alembic's entry point, run by ``cei_assets.incidents.db.upgrade`` on a connection it opened.

Online only: the store always migrates the database it is about to use. A new revision is a
new file in ``versions/`` with ``revision = "0002"`` and ``down_revision = "0001"`` (and so on);
every process picks it up the next time it opens the store.
"""

from alembic import context

from cei_assets.incidents.db import PG_MIGRATION_LOCK, VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the incident store migrates through cei_assets.incidents.db.upgrade(engine)")

context.configure(
    connection=connection,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER on SQLite needs a table copy
    transaction_per_migration=False,
)

with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Held until this transaction ends: a second process migrating at the same moment
        # waits, then finds the schema current. (SQLite serialises on BEGIN IMMEDIATE.)
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
    context.run_migrations()
