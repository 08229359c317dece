"""No data leaves the firm unless configured: the whole demo reaches nothing but loopback.

Every command of the demo runs as a user runs it, in subprocesses, with tests/no_egress on
PYTHONPATH: its sitecustomize records every name lookup, connection and datagram that any
Python process of the demo attempts (the `cei` command, Dagster, dbt, Soda and their
children), before the attempt is made. The test fails on any address outside loopback.

What the recorder cannot see: native code that opens sockets itself. DuckDB could (httpfs),
so CEI forbids it from loading extensions; nothing else in the demo is native networking.

The demo's day carries a warning fault (the two vendors disagree), so the incident path runs
in full: the sensor's scan stores an incident and writes its report (the template: no LLM is
configured by default), the notifier delivers it (no Slack configured: to files), the digest
summarises the day.
"""

import datetime as dt
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from cei_cli import CEI

RECORDER = Path(__file__).resolve().parent / "no_egress"
DATE = dt.date(2026, 10, 1)
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}

# The demo, step by step: (what, argv after `cei`). Later issues append their commands here.
DEMO = [
    ("generate", ["generate", "{landing}", "--start", DATE.isoformat(), "--days", "1", "--fault", "vendor_disagreement"]),
    ("run", ["run", "--date", DATE.isoformat()]),
    ("status", ["status", "--date", DATE.isoformat(), "--json"]),
    ("explain-pnl", ["explain-pnl", "--date", DATE.isoformat()]),
    ("incidents scan", ["incidents", "scan"]),
    ("incidents list", ["incidents", "list"]),
    ("notify flush", ["notify", "flush"]),
    ("digest", ["digest", "--date", DATE.isoformat(), "--send"]),
]

# Telemetry switches of every vendor CEI embeds, as each must be in every profile.
TELEMETRY_OFF = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "SODA_CORE_TELEMETRY_ENABLED": "false", "DO_NOT_TRACK": "1"}
_DEPLOYMENT_VARS = ("DAGSTER_HOME", "CEI_WAREHOUSE", "CEI_WAREHOUSE_URL", "CEI_LANDING_DIR", "CEI_PROFILE", "CEI_SECRETS_FILE",
                    "CEI_PG_HOST", "CEI_PG_DATABASE", "CEI_PG_USER", "CEI_PG_PASSWORD", "CEI_PG_PORT",
                    "CEI_INCIDENTS_URL", "CEI_EXECUTOR", *TELEMETRY_OFF)


def recorded_env(home: Path, log: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _DEPLOYMENT_VARS}
    env.update(CEI_HOME=str(home), CEI_LANDING_DIR=str(home / "landing"), CEI_EGRESS_LOG=str(log), **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(RECORDER), env.get("PYTHONPATH")) if p)
    return env


def entries(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def attempts(log: Path) -> list[dict]:
    """The network attempts recorded (not the 'watching' line each process writes at start)."""
    return [e for e in entries(log) if e["event"] != "watching"]


def watched(log: Path) -> list[list[str]]:
    return [e["argv"] for e in entries(log) if e["event"] == "watching"]


def is_loopback(attempt: dict) -> bool:
    if attempt["family"] == socket.AF_UNIX:
        return True
    address = attempt["address"]
    host = address[0] if isinstance(address, list) else address
    if host is None:  # a lookup for a local, passive socket
        return True
    if isinstance(host, str) and host.startswith(("http://", "https://")):  # urllib.Request
        host = host.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    host = str(host).lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name that is not loopback's: resolving it may already leave the machine


def outside_loopback(log: Path) -> list[dict]:
    return [a for a in attempts(log) if not is_loopback(a)]


def test_the_recorder_sees_connections_and_the_check_catches_one_that_leaves(tmp_path):
    """Proof the test below can fail: a process that reaches out is recorded and flagged."""
    log = tmp_path / "egress.jsonl"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    threading.Thread(target=lambda: listener.accept(), daemon=True).start()
    code = (
        "import socket\n"
        f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
        "s = socket.socket(); s.settimeout(0.2)\n"
        "try:\n    s.connect(('192.0.2.1', 9))\n"  # TEST-NET-1: documentation only, never routed
        "except OSError:\n    pass\n"
        "try:\n    socket.getaddrinfo('example.com', 443)\n"
        "except OSError:\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", code], env=recorded_env(tmp_path, log), check=True, timeout=60)
    listener.close()

    seen = attempts(log)
    assert any(a["event"] == "socket.connect" and a["address"] == ["127.0.0.1", str(port)] for a in seen), seen
    assert not is_loopback({"family": socket.AF_INET, "address": ["10.1.2.3", "5432"]})
    assert is_loopback({"family": socket.AF_INET6, "address": ["::1", "5432"]})
    flagged = outside_loopback(log)
    assert [a["address"] for a in flagged] == [["192.0.2.1", "9"], ["example.com", 443]]


@pytest.mark.slow
def test_the_whole_demo_reaches_nothing_outside_loopback(tmp_path):
    home, log = tmp_path / "home", tmp_path / "egress.jsonl"
    env = recorded_env(home, log)
    for what, argv in DEMO:
        argv = [arg.format(landing=home / "landing") for arg in argv]
        result = subprocess.run([CEI, *argv], env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"cei {what} failed:\n{result.stdout}\n{result.stderr}"
        assert not outside_loopback(log), f"cei {what} reached outside loopback: {outside_loopback(log)}"

    # The recorder watched the demo's own processes: every `cei` command and dbt, which Dagster
    # starts as a process of its own. (An empty list of attempts is what the demo should give.)
    commands = [" ".join(argv) for argv in watched(log)]
    for what, _ in DEMO:
        assert any(f"bin/cei {what}" in c for c in commands), f"cei {what} was not watched: {commands}"
    assert any("bin/dbt" in c for c in commands), f"dbt was not watched: {commands}"
    # The warning became an incident, reported and delivered without leaving the machine.
    listed = subprocess.run([CEI, "incidents", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert "vendor_agreement" in listed.stdout, listed.stdout + listed.stderr
    delivered = "\n".join(p.read_text() for p in (home / "notifications").rglob("*") if p.is_file())
    assert "vendor_agreement" in delivered, "the alert or digest was not delivered to files"
    print(f"{len(commands)} processes watched, {len(attempts(log))} network attempts, all loopback")


def _telemetry_of(home: Path, **profile_env) -> dict:
    code = (
        "import json, os\n"
        "from cei_assets import settings\n"
        "settings.configure_environment()\n"
        "print(json.dumps({k: os.environ.get(k) for k in %r}))\n" % list(TELEMETRY_OFF)
    )
    env = {k: v for k, v in os.environ.items() if k not in _DEPLOYMENT_VARS}
    env.update(CEI_HOME=str(home), **profile_env)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("profile_env", [
    {},
    {"CEI_PG_HOST": "db.internal", "CEI_PG_DATABASE": "cei", "CEI_PG_USER": "cei"},
    {"CEI_PG_HOST": "db.internal", "CEI_PG_DATABASE": "cei", "CEI_PG_USER": "cei", "CEI_EXECUTOR": "celery"},
], ids=["embedded", "production", "production-celery"])
def test_telemetry_is_off_in_every_profile(tmp_path, profile_env):
    assert _telemetry_of(tmp_path / "home", **profile_env) == TELEMETRY_OFF
    instance = yaml.safe_load((tmp_path / "home" / "dagster" / "dagster.yaml").read_text())
    assert instance["telemetry"] == {"enabled": False}
    dbt_project = yaml.safe_load((Path(__file__).resolve().parent.parent / "dbt_project" / "dbt_project.yml").read_text())
    assert dbt_project["flags"]["send_anonymous_usage_stats"] is False
