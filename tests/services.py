"""CEI's services as a test starts them: `bin/cei-services` (dagster-daemon, dagster-webserver)
in a subprocess with the test's own environment, and the webserver's GraphQL API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Variables a test's subprocess must not inherit from whoever runs the suite.
DEPLOYMENT_VARS = (
    "DAGSTER_HOME", "CEI_WAREHOUSE", "CEI_WAREHOUSE_URL", "CEI_LANDING_DIR", "CEI_PROFILE", "CEI_SECRETS_FILE", "CEI_EXECUTOR",
    "CEI_PG_HOST", "CEI_PG_PORT", "CEI_PG_DATABASE", "CEI_PG_USER", "CEI_PG_PASSWORD", "CEI_MAX_CONCURRENT_RUNS",
    "CEI_INCIDENTS_URL",
)


def clean_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT_VARS}
    env["CEI_HOME"] = str(home)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    """One query to the webserver at ``url``; a GraphQL error fails the test with its message."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


class RunningServices:
    """`bin/cei-services` as started by a test: its output so far, its webserver, its stop."""

    def __init__(self, process: subprocess.Popen, port: int):
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.returncode: int | None = None

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_until_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("cei-services ended before the webserver was ready:\n" + self.text)
            self.lines.append(line)
            if line.startswith("webserver ready"):
                return
        raise AssertionError(f"the webserver did not come up within {timeout:.0f} s:\n" + self.text)

    def stop(self) -> None:
        """What Ctrl-C does; waits for every service to stop. Stopping twice is a no-op."""
        if self.returncode is not None:
            return
        self.process.send_signal(signal.SIGINT)
        rest, _ = self.process.communicate(timeout=120)
        self.lines.append(rest)
        self.returncode = self.process.returncode

    def sessions(self) -> list[int]:
        """The session of each service (each runs in one of its own), from the 'started' lines."""
        return [int(pid) for pid in re.findall(r"^started \S+ \(pid (\d+)\)", self.text, re.MULTILINE)]


@contextlib.contextmanager
def cei_services(env: dict, *args: str) -> Iterator[RunningServices]:
    """`bin/cei-services` on a free port, once its webserver answers; stopped with SIGINT on exit."""
    port = free_port()
    process = subprocess.Popen([str(PROJECT_ROOT / "bin" / "cei-services"), "--port", str(port), *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    services = RunningServices(process, port)
    try:
        services.wait_until_ready()
        yield services
    finally:
        services.stop()


def processes_in_sessions(sessions: list[int]) -> list[int]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, session = fields[0], int(fields[3])
        if session in sessions and state != "Z":
            alive.append(int(stat.parent.name))
    return alive


def assert_stopped_cleanly(services: RunningServices, names: tuple[str, ...] = ("daemon", "webserver")) -> None:
    """Every service stopped on the signal with exit code 0, and nothing of any of them (code
    servers, run workers) outlived the stop."""
    text = services.text
    assert services.returncode == 0, text
    for name in names:
        assert f"stopped {name} (exit code 0)" in text, text
    sessions = services.sessions()
    assert len(sessions) == len(names), text
    deadline = time.monotonic() + 10  # a killed process may take a moment to be gone
    while processes_in_sessions(sessions) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_in_sessions(sessions), [Path(f"/proc/{p}/cmdline").read_bytes()[:200]
                                                 for p in processes_in_sessions(sessions)]


# --------------------------------------------------------------------------- dagster-daemon alone

DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))


class Daemon:
    """``dagster-daemon run`` on a workspace in its own session, so the code server it starts stops with it."""

    def __init__(self, workdir: Path, env: dict):
        self.workdir, self.env, self.process, self.starts = workdir, env, None, 0
        self.log = workdir / "daemon.log"

    def start(self) -> None:
        self.starts += 1
        with self.log.open("a") as log:
            log.write(f"\n===== start {self.starts} =====\n")
            log.flush()
            # Its own session, so the code server it spawns dies with it.
            self.process = subprocess.Popen(
                [DAEMON, "run", "-w", str(self.workdir / "workspace.yaml")], cwd=self.workdir, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL to the daemon and its children: no clean shutdown, no chance to save anything."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return self.log.read_text()[-6000:] if self.log.exists() else ""


def wait_for(what, condition, daemon: Daemon, timeout: float = 120, poll_s: float = 0.25):
    """Poll ``condition()`` until it returns something truthy; fail when the daemon exits or on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if daemon.process is not None and daemon.process.poll() is not None:
            raise AssertionError(f"the daemon exited while waiting for {what}:\n{daemon.tail()}")
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}:\n{daemon.tail()}")
