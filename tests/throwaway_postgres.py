"""A throwaway PostgreSQL database on the local server, for tests of the production profile.

The server is the machine's own (127.0.0.1:5432, trust authentication); each test gets a
database of its own, created on entry and dropped on exit, so runs never see each other.
"""

import contextlib
import os
import uuid

import pytest

HOST = os.environ.get("CEI_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("CEI_TEST_PG_PORT", "5432"))
# Debian's server trusts both on loopback; CI runs as root, a developer may only have postgres.
USERS = ("postgres", "root")


def _connect(user: str, database: str = "postgres"):
    import psycopg2

    return psycopg2.connect(host=HOST, port=PORT, user=user, dbname=database, connect_timeout=5)


def admin_user() -> str | None:
    for user in USERS:
        try:
            _connect(user).close()
            return user
        except Exception:  # noqa: BLE001 - any failure means: try the next user
            continue
    return None


@contextlib.contextmanager
def throwaway_database(prefix: str = "cei_test"):
    """Yield the CEI_PG_* variables of a fresh database; drop it afterwards."""
    user = admin_user()
    if user is None:
        pytest.skip(f"no PostgreSQL server accepting users {USERS} on {HOST}:{PORT}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _connect(user)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield {"CEI_PG_HOST": HOST, "CEI_PG_PORT": str(PORT), "CEI_PG_DATABASE": name, "CEI_PG_USER": user}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def database_exists(name: str) -> bool:
    user = admin_user()
    with contextlib.closing(_connect(user)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return cursor.fetchone() is not None
