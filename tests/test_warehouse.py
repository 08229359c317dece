"""DuckDB has one writer: CEI's processes queue on the warehouse instead of failing."""

import multiprocessing
import time

import duckdb
import pytest

from cei_assets.warehouse import WarehouseLockTimeout, WarehouseResource


def _append_rows(path: str, worker: int, rows: int) -> None:
    warehouse = WarehouseResource(path=path)
    for i in range(rows):
        with warehouse.write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS events (worker INT, i INT)")
            conn.execute("INSERT INTO events VALUES (?, ?)", [worker, i])


def _read_count(path: str, queue) -> None:
    with WarehouseResource(path=path).read() as conn:
        queue.put(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def test_concurrent_writer_processes_never_hit_a_lock_error(tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_rows, args=(path, w, 25)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert duckdb.connect(path, read_only=True).execute("SELECT count(*) FROM events").fetchone()[0] == 100


def test_a_reader_in_another_process_waits_for_the_writer(tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    warehouse = WarehouseResource(path=path)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with warehouse.write() as conn:
        conn.execute("CREATE TABLE events (worker INT, i INT)")
        reader = context.Process(target=_read_count, args=(path, queue))
        reader.start()
        time.sleep(1.5)  # the reader is blocked on the lock meanwhile, not failing
        conn.execute("INSERT INTO events VALUES (1, 1)")
    reader.join(timeout=60)
    assert reader.exitcode == 0
    assert queue.get(timeout=5) == 1


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    warehouse = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    with warehouse.lock(exclusive=True):
        with warehouse.write() as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS x")
        with warehouse.read() as conn:
            assert conn.execute("SELECT x FROM t").fetchone() == (1,)


def _hold_lock(path: str, seconds: float, ready) -> None:
    with WarehouseResource(path=path).lock(exclusive=True):
        ready.set()
        time.sleep(seconds)


def test_a_wait_longer_than_the_timeout_says_who_holds_the_warehouse(tmp_path):
    path = str(tmp_path / "w.duckdb")
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_lock, args=(path, 5, ready))
    holder.start()
    assert ready.wait(30)
    with pytest.raises(WarehouseLockTimeout, match="another CEI process"):
        with WarehouseResource(path=path, lock_timeout_seconds=0.5).write():
            pass
    holder.join(timeout=30)
