"""The incident sensor under a real ``dagster-daemon``: exactly the expected incidents, across a kill.

A temporary DAGSTER_HOME and a workspace with the small books location (``incident_location``);
the daemon evaluates the sensor every second. A run with a blocking failure; the daemon is killed
(SIGKILL, mid-tick or not); a run with a warning executes while it is down; the daemon is
restarted: each failure ends in exactly one incident, none lost, none doubled.
"""

import os
import time
from pathlib import Path

import dagster as dg
import pytest
from incident_location import FAULT_TAG, daily_job
from services import Daemon, wait_for

from cei_assets.incidents.store import IncidentStore

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
D1, D2 = "2026-01-05", "2026-01-06"
SETTLE_SECONDS = 2  # the sensor rereads the last 2 s of events each tick: replays must not double


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    home = tmp_path / "cei_home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (tmp_path / "workspace.yaml").write_text(
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: incident_location\n"
        f"      working_directory: {TESTS}\n"
    )
    url = f"sqlite:///{home / 'incidents.db'}"
    settings = {
        "CEI_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "CEI_INCIDENTS_URL": url,
        "CEI_INCIDENT_SENSOR_INTERVAL": "1",
        "CEI_TEST_SETTLE_SECONDS": str(SETTLE_SECONDS),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    daemon = Daemon(tmp_path, env)
    with dg.DagsterInstance.get() as instance:
        yield instance, IncidentStore(url), daemon
    daemon.stop()


def launch(instance, partition: str, fault: str):
    return dg.execute_job(
        dg.reconstructable(daily_job), instance=instance, raise_on_error=False,
        tags={FAULT_TAG: fault, "dagster/partition": partition},
    )


def checks_by_incident(store: IncidentStore):
    return [
        sorted((f.failure.check_id, f.failure.partition) for f in i.failures)
        for i in sorted(store.list_incidents(), key=lambda i: i.id)
    ]


def test_the_daemon_turns_each_failure_into_one_incident_across_a_kill_and_restart(deployment):
    instance, store, daemon = deployment
    daemon.start()
    blocking = launch(instance, D1, "bad_marks")
    assert not blocking.success
    wait_for("the blocking failure's incident", lambda: store.list_incidents(), daemon)

    # The daemon dies without warning (whatever its sensor was doing); the warning's run
    # executes while it is down.
    daemon.kill()
    assert launch(instance, D2, "warn").success  # a warning does not fail the run
    assert len(store.list_incidents()) == 1  # nobody was watching

    daemon.start()
    wait_for("the warning's incident", lambda: len(store.list_incidents()) >= 2, daemon)
    # Let the restarted sensor tick on past the settle time: replays must add nothing.
    time.sleep(SETTLE_SECONDS + 4)
    assert daemon.process.poll() is None, daemon.tail()

    assert checks_by_incident(store) == [[("marks/marks_positive", D1)], [("pnl/pnl_reasonable", D2)]]
    halting, warning = sorted(store.list_incidents(), key=lambda i: i.id)
    assert halting.halts and not warning.halts
    assert warning.failures[0].failure.warn_only
    events = [e.event for e in store.audit_entries()]
    assert events.count("incident_opened") == 2
    assert events.count("check_halt") == 1 and events.count("check_warning") == 1
    assert "incident_merged" not in events
