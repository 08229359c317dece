"""How long a piece of work would take on an idle machine, measured on a busy one.

This checkout is shared: other engineers' tests use the same two cores, so the wall time of a
benchmark swings with their work. What a process's threads compute does not: ``ThreadClock``
samples the CPU clock of every thread of this process (Linux per-thread clocks, nanoseconds)
every 50 ms while the work runs. In each interval, work spread over several threads would have
run side by side on idle cores, and work on one thread would not have gone faster; the sum over
the intervals of ``max(busiest thread, all threads / cores)`` is the time the same work needs on
an idle machine with that many cores. Waiting (for the disk, a lock) counts for nothing; on this
machine the data are in the page cache. Why 50 ms: on a machine busy with 8 runnable threads a
5 ms interval often sees only one of two parallel threads run (the scheduler's slices are a few
ms), which would count parallel work as serial; over 50 ms both get their turns. A parallel scan
of a CSV file is estimated at 0.53-0.62 of its CPU time that way on two cores, at 0.72-0.77 with
5 ms intervals (measured at a load of 8).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _thread_clock(tid: int) -> int:
    """The CPU clock of any thread of this process (Linux: MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED))."""
    return ((~tid) << 3) | 6


def _thread_times(skip: int) -> dict[int, float]:
    out = {}
    for name in os.listdir("/proc/self/task"):
        tid = int(name)
        if tid == skip:
            continue
        try:
            out[tid] = time.clock_gettime(_thread_clock(tid))
        except OSError:  # the thread ended meanwhile
            continue
    return out


class ThreadClock:
    """``with ThreadClock() as clock: work()``, then ``clock.cpu_s`` (every thread) and
    ``clock.idle_s`` (the estimate for an idle machine with ``cores`` cores)."""

    def __init__(self, cores: int | None = None, interval_s: float = 0.05):
        self.cores = cores or os.cpu_count() or 1
        self.interval_s = interval_s
        self.cpu_s = 0.0
        self.idle_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.available = Path("/proc/self/task").is_dir()

    def _sample(self, last: dict[int, float], me: int) -> dict[int, float]:
        now = _thread_times(me)
        deltas = [now[t] - last.get(t, 0.0) for t in now]  # a thread started since: all its time
        if deltas:
            spent = sum(deltas)
            self.cpu_s += spent
            self.idle_s += max(max(deltas), spent / self.cores)
        return now

    def _run(self) -> None:
        me = threading.get_native_id()
        last = self._baseline
        while not self._stop.wait(self.interval_s):
            last = self._sample(last, me)
        self._sample(last, me)

    def start(self) -> ThreadClock:
        if self.available:
            self._baseline = _thread_times(-1)
            self._thread = threading.Thread(target=self._run, name="cei-thread-clock", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> ThreadClock:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        return self

    def __enter__(self) -> ThreadClock:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
