"""Records every outbound network attempt of a Python process, for tests/test_no_egress.py.

Put this folder on PYTHONPATH and set CEI_EGRESS_LOG to a file: every Python process that
starts with that environment (the `cei` command, Dagster's step and code-server processes,
dbt, Soda) appends one JSON line per name lookup, connection or datagram it attempts, before
the attempt is made. Recording never changes what the process does: the hook only writes.

Test-only: nothing outside tests/ imports it.
"""

import json
import os
import sys

_LOG = os.environ.get("CEI_EGRESS_LOG")

# Audit events that reveal where a process tries to reach (see the audit events table of the
# Python docs). The address is the event's first or second argument.
_EVENTS = {
    "socket.connect": 1,
    "socket.sendto": 1,
    "socket.sendmsg": 1,
    "socket.getaddrinfo": 0,
    "socket.gethostbyname": 0,
    "socket.gethostbyname_ex": 0,
    "socket.gethostbyaddr": 0,
    "socket.getnameinfo": 0,
    "urllib.Request": 0,
    "http.client.connect": 1,
}


def _address(event, args):
    value = args[_EVENTS[event]] if len(args) > _EVENTS[event] else None
    if event == "socket.getaddrinfo":
        return [value if not isinstance(value, bytes) else value.decode(errors="replace"), args[1]]
    if event == "http.client.connect":
        return [args[1], args[2]]
    if isinstance(value, tuple):
        return [str(part) for part in value[:2]]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if value is None or isinstance(value, (str, int)) else str(value)


def _write(entry):
    # One write per line, appended: many processes share the file.
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def _record(event, args):
    if event not in _EVENTS:
        return
    try:
        family = None
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            family = int(getattr(args[0], "family", -1))
        _write({"event": event, "address": _address(event, args), "family": family,
                "pid": os.getpid(), "argv": sys.argv[:3]})
    except Exception:  # noqa: BLE001 - a recorder must never break the process it watches
        pass


if _LOG:
    sys.addaudithook(_record)
    # Which processes were watched: the test checks the demo's own processes are among them.
    # sys.argv is not set yet while site runs; the command line is read from /proc.
    try:
        with open(f"/proc/{os.getpid()}/cmdline", "rb") as cmdline:
            argv = [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part][:4]
    except OSError:
        argv = []
    try:
        _write({"event": "watching", "address": None, "family": None, "pid": os.getpid(), "argv": argv})
    except Exception:  # noqa: BLE001
        pass
