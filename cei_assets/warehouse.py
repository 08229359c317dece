"""The warehouse: a DuckDB file by default, PostgreSQL by configuration (``CEI_WAREHOUSE_URL``).

Both engines are used through one resource with one contract: ``read()`` and ``write()`` give a
connection that runs DuckDB SQL (on PostgreSQL, ``warehouse_postgres.PostgresConnection``
translates it), ``lock()`` holds the warehouse while another process (dbt) writes it.

DuckDB lets one process open a database file for writing, and no other process may open it
at all while it does. Dagster's default executor runs each step in its own process, dbt runs
in a subprocess, and sensors and ``cei status`` read from yet other processes; left alone
they would fail with lock errors. Every access therefore goes through an advisory file lock
next to the database: writers take it exclusively, readers shared, and each holds it only
for the statement batch at hand. Waiting is bounded and reported, never an error unless the
wait exceeds ``lock_timeout_seconds``.

On PostgreSQL readers never wait (the server isolates them from writers) and writers exclude
each other with an advisory lock on the server instead of the file (see warehouse_postgres).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from cei_assets import settings
from cei_assets import warehouse_postgres as pg
from cei_assets.warehouse_locks import WarehouseLockTimeout, held_mode, process_lock, wait_for_lock

__all__ = ["WarehouseLockTimeout", "WarehouseResource", "warehouse_lock"]


@contextlib.contextmanager
def warehouse_lock(database: Path, exclusive: bool, timeout_seconds: float = 900.0) -> Iterator[None]:
    """The DuckDB warehouse's lock: ``flock`` on ``<database>.lock``, re-entrant within the process
    (flock on a second descriptor of the file would wait for ourselves: dbt inside a step)."""
    lock_path = str(database) + ".lock"
    wanted = "exclusive" if exclusive else "shared"

    def acquire() -> int:
        Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        flag = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH

        def try_once() -> bool:
            try:
                fcntl.flock(fd, flag | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        try:
            wait_for_lock(try_once, wanted=wanted, where=str(database), timeout_seconds=timeout_seconds,
                          holder="holding the warehouse (a long run or dbt build?)")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def release(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    with process_lock(lock_path, exclusive, acquire, release):
        yield


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse: the DuckDB file (``CEI_WAREHOUSE``, default ``$CEI_HOME/warehouse.duckdb``),
    or the PostgreSQL database named by ``url`` (``CEI_WAREHOUSE_URL``) when it is set."""

    path: str = Field(description="Path of the DuckDB database file (unused when url is set).")
    url: str = Field(
        default="",
        description="PostgreSQL URL of the warehouse, postgresql://user@host:5432/dbname; empty for DuckDB. "
        "The password may come from PGPASSWORD instead of the URL.",
    )
    lock_timeout_seconds: float = Field(default=900.0, description="Longest wait for another process's lock.")
    threads: int = Field(default=0, description="DuckDB threads; 0 lets DuckDB use every core.")

    @classmethod
    def from_environment(cls) -> WarehouseResource:
        return cls(path=str(settings.warehouse_path()), url=settings.warehouse_url())

    @property
    def engine(self) -> str:
        return "postgres" if self.url.strip() else "duckdb"

    @property
    def postgres(self) -> pg.PostgresTarget | None:
        """The PostgreSQL coordinates, or None on DuckDB. A malformed URL fails with what to fix."""
        return pg.parse_url(self.url) if self.url.strip() else None

    @property
    def database(self) -> Path:
        return Path(self.path)

    @property
    def shown(self) -> str:
        """Where the warehouse is, without secrets."""
        target = self.postgres
        return target.shown if target else str(self.database)

    def dbt_environment(self) -> dict[str, str]:
        """The variables dbt_project/profiles.yml reads to reach this warehouse."""
        target = self.postgres
        if target is None:
            return {"CEI_DBT_TARGET": "duckdb", "CEI_WAREHOUSE": self.path}
        return target.dbt_environment()

    @contextlib.contextmanager
    def lock(self, exclusive: bool = True) -> Iterator[None]:
        """Hold the warehouse without a connection, e.g. while dbt's own process writes to it."""
        target = self.postgres
        if target is not None:
            with pg.advisory_lock(target, exclusive=exclusive, timeout_seconds=self.lock_timeout_seconds):
                yield
            return
        with warehouse_lock(self.database, exclusive=exclusive, timeout_seconds=self.lock_timeout_seconds):
            yield

    @contextlib.contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection | pg.PostgresConnection]:
        target = self.postgres
        if target is not None:
            with self.lock(exclusive=True):
                conn = pg.PostgresConnection(target, application="cei-writer")
                try:
                    pg.ensure_compat_functions(conn)
                    yield conn
                finally:
                    conn.close()
            return
        self.database.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(exclusive=True):
            conn = self._connect(read_only=False)
            try:
                yield conn
            finally:
                conn.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection | pg.PostgresConnection]:
        """A read-only connection; on DuckDB an empty in-memory database when nothing was written yet."""
        target = self.postgres
        if target is not None:
            # No lock: PostgreSQL shows a reader the last committed state while writers write.
            conn = pg.PostgresConnection(target, application="cei-reader")
            try:
                yield conn
            finally:
                conn.close()
            return
        if not self.database.exists():
            conn = duckdb.connect(":memory:")
            try:
                yield conn
            finally:
                conn.close()
            return
        with self.lock(exclusive=False):
            held_exclusive = held_mode(str(self.database) + ".lock") == "exclusive"
            # A process that already writes reads through a writable connection: DuckDB refuses
            # a read-only handle on a file the same process has open for writing.
            conn = self._connect(read_only=not held_exclusive)
            try:
                yield conn
            finally:
                conn.close()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        conn = duckdb.connect(str(self.database), read_only=read_only, config=self._config())
        # Set after connecting: the time-zone setting needs ICU, which loads with the database.
        conn.execute("SET TimeZone = 'UTC'")
        return conn

    def _config(self) -> dict:
        # Never fetch extensions at run time: the machine may have no internet, and no data
        # or request leaves the firm unasked. What CEI needs (ICU, JSON, Parquet) is built in.
        config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        if self.threads:
            config["threads"] = self.threads
        return config
