"""The writers' lock of the warehouse, whichever engine holds it.

Both engines need one writer at a time across processes: the DuckDB warehouse with ``flock``
on a file next to the database, the PostgreSQL warehouse with a session advisory lock on the
server. What they share lives here: a lock is taken once per process (a step, dbt inside it
and the checks it runs all ask for it; asking again must not wait for ourselves), and waiting
is bounded and reported.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

_held: dict[str, tuple[Any, str, int]] = {}  # lock key -> (handle, mode, depth)
_held_guard = threading.RLock()


class WarehouseLockTimeout(RuntimeError):
    pass


def held_mode(key: str) -> str | None:
    """``"exclusive"`` or ``"shared"`` when this process holds the lock ``key``, else None."""
    with _held_guard:
        held = _held.get(key)
    return held[1] if held else None


@contextlib.contextmanager
def process_lock(key: str, exclusive: bool, acquire: Callable[[], Any], release: Callable[[Any], None]) -> Iterator[None]:
    """Hold the cross-process lock ``key``: ``acquire()`` takes it (waiting as it must) and
    returns a handle, ``release(handle)`` gives it back. Asked again within the process, an
    exclusive hold serves both kinds and only counts depth; a shared hold cannot become
    exclusive (another process may share it: upgrading could deadlock), which is a bug to raise.
    """
    wanted = "exclusive" if exclusive else "shared"
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            handle, mode, depth = held
            if mode == "shared" and exclusive:
                raise RuntimeError("cannot upgrade a shared warehouse lock to exclusive within one process")
            _held[key] = (handle, mode, depth + 1)
    if held is not None:
        try:
            yield
        finally:
            with _held_guard:
                handle, mode, depth = _held[key]
                _held[key] = (handle, mode, depth - 1)
        return

    handle = acquire()
    with _held_guard:
        _held[key] = (handle, wanted, 1)
    try:
        yield
    finally:
        with _held_guard:
            del _held[key]
        release(handle)


def wait_for_lock(try_once: Callable[[], bool], *, wanted: str, where: str, holder: str,
                  timeout_seconds: float) -> None:
    """Call ``try_once()`` until it takes the lock; say every 10 s that we wait, give up with
    ``WarehouseLockTimeout`` after ``timeout_seconds`` naming what the other process is doing."""
    deadline = time.monotonic() + timeout_seconds
    next_report = time.monotonic() + 10
    while not try_once():
        now = time.monotonic()
        if now > deadline:
            raise WarehouseLockTimeout(
                f"waited {timeout_seconds:.0f}s for the {wanted} lock on {where}; another CEI process is {holder}"
            )
        if now > next_report:
            log.info("waiting for the warehouse lock on %s (another CEI process is writing)", where)
            next_report = now + 10
        time.sleep(0.05)
