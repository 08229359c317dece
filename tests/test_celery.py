"""Scale-out: the daily graph on two Celery workers (dagster-celery) over the local RabbitMQ.

Everything is real: `cei generate` writes one trading date, `bin/cei-services` starts two
Celery workers, the Dagster instance is on PostgreSQL (a throwaway database) so the workers
and the launching process share it, and `cei run` with ``CEI_EXECUTOR=celery`` sends every
step through the broker, on the PostgreSQL warehouse (a second throwaway database, named by
``CEI_WAREHOUSE_URL``, with the advisory writer lock): the deployment that lets workers live on
several hosts. The DuckDB warehouse under steps in separate processes is
tests/test_daily_books.py's multiprocess test (its file lock makes the writers queue); set
``CEI_TEST_CELERY_WAREHOUSES=duckdb,postgresql`` to run this one on both.

The test's steps travel on a Celery queue of its own (``CEI_CELERY_QUEUE``), on a RabbitMQ virtual
host of its own when `rabbitmqctl` can make one: no other worker on the machine can take its steps,
and its workers take no one else's.
"""

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from cei_cli import cei
from throwaway_postgres import throwaway_database

from cei_assets.warehouse import WarehouseResource

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATE = dt.date(2026, 10, 1)
RABBITMQ = ("127.0.0.1", 5672)
pytestmark = pytest.mark.slow


def _rabbitmq_up() -> bool:
    try:
        socket.create_connection(RABBITMQ, timeout=3).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def rabbitmq_vhost():
    """A broker URL on a virtual host of our own, deleted afterwards; the default vhost when
    rabbitmqctl cannot make one (it needs root or the rabbitmq user), where the test's own queue
    name still keeps its steps apart."""
    if not _rabbitmq_up():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    ctl = shutil.which("rabbitmqctl")
    vhost = f"cei_test_{uuid.uuid4().hex[:8]}"

    def run(*args):
        return subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60).returncode == 0

    made = bool(ctl) and run("add_vhost", vhost)
    try:
        if made and run("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"):
            yield f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{vhost}"
        else:
            yield f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}//"
    finally:
        if made:
            run("delete_vhost", vhost)


def _wait_for_workers(logs: Path, names: list[str], services: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert services.poll() is None, "cei-services ended early:\n" + services.stdout.read()
        texts = [(logs / f"celery-{n}.log").read_text() if (logs / f"celery-{n}.log").exists() else "" for n in (1, 2)]
        if all(re.search(rf"{re.escape(name)}@\S+ ready\.", text) for name, text in zip(names, texts)):
            return
        time.sleep(0.5)
    pytest.fail("the Celery workers did not report ready:\n" + "\n".join(texts))


@contextlib.contextmanager
def warehouse_of(kind: str):
    """The warehouse variables of one kind: the DuckDB file under CEI_HOME, or a PostgreSQL database."""
    if kind == "duckdb":
        yield {}
        return
    with throwaway_database("cei_test_warehouse") as db:
        yield {"CEI_WAREHOUSE_URL": f"postgresql://{db['CEI_PG_USER']}@{db['CEI_PG_HOST']}:{db['CEI_PG_PORT']}/"
                                    f"{db['CEI_PG_DATABASE']}"}


# The suite's time budget runs the PostgreSQL warehouse only by default (see the docstring).
CELERY_WAREHOUSES = os.environ.get("CEI_TEST_CELERY_WAREHOUSES", "postgresql").split(",")


@pytest.fixture(scope="module", params=CELERY_WAREHOUSES)
def celery_run(tmp_path_factory, request):
    root = tmp_path_factory.mktemp(f"celery-{request.param}")
    home, landing = root / "home", root / "landing"
    with throwaway_database() as pg_env, warehouse_of(request.param) as warehouse_env, rabbitmq_vhost() as broker:
        queue = f"cei_test_{uuid.uuid4().hex[:8]}"
        env_extra = {**pg_env, **warehouse_env, "CEI_EXECUTOR": "celery", "CEI_CELERY_BROKER": broker,
                     "CEI_CELERY_QUEUE": queue, "CEI_LANDING_DIR": str(landing)}
        generated = cei("generate", str(landing), "--start", DATE.isoformat(), "--days", "1", "--symbols", "6",
                        "--quotes-per-symbol", "30", "--orders-per-day", "12", home=home, extra_env=env_extra)
        assert generated.returncode == 0, generated.stderr

        env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "CEI_WAREHOUSE", "CEI_WAREHOUSE_URL")}
        env.update(env_extra, CEI_HOME=str(home))
        services = subprocess.Popen(
            [str(PROJECT_ROOT / "bin" / "cei-services"), "--no-daemon", "--no-webserver", "--celery-workers", "2",
             "--worker-name", "cei-test"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            _wait_for_workers(home / "logs", ["cei-test-1", "cei-test-2"], services)
            started = time.monotonic()
            run = cei("run", "--date", DATE.isoformat(), home=home, landing=landing, extra_env=env_extra)
            took = time.monotonic() - started
            status = cei("status", "--date", DATE.isoformat(), "--json", home=home, extra_env=env_extra)
        finally:
            services.send_signal(signal.SIGINT)
            services_output, _ = services.communicate(timeout=180)

        # The run's events, read from the PostgreSQL instance the workers wrote them to.
        saved = {k: os.environ.get(k) for k in pg_env}
        os.environ.update({**pg_env, "CEI_PG_PASSWORD": ""})
        try:
            with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
                [record] = instance.get_run_records(limit=1)
                events = instance.all_logs(record.dagster_run.run_id)
                steps_by_worker = {}
                for entry in events:
                    event = entry.dagster_event
                    if event and event.event_type_value == "ENGINE_EVENT" and event.step_key:
                        worker = event.event_specific_data.metadata.get("Celery worker")
                        if worker is not None:
                            steps_by_worker.setdefault(worker.value, []).append(event.step_key)
                executor = record.dagster_run.tags
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            os.environ.pop("CEI_PG_PASSWORD", None)
        yield {
            "warehouse": WarehouseResource(path=str(home / "warehouse.duckdb"), url=warehouse_env.get("CEI_WAREHOUSE_URL", "")),
            "kind": request.param, "home": home, "run": run, "took": took, "status": status, "steps_by_worker": steps_by_worker,
            "services_output": services_output, "services_code": services.returncode, "tags": executor,
            "queue": queue,
        }


def test_the_daily_graph_runs_green_on_two_celery_workers(celery_run):
    run = celery_run["run"]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    status = json.loads(celery_run["status"].stdout)
    materialized = {a["key"] for a in status["assets"] if a["materialized"]}
    assert {"positions", "cash_balances", "market_values", "daily_pnl"} <= materialized, materialized
    assert len([key for key in materialized if key.startswith("landing/")]) >= 10
    assert not [c for c in status["checks"] if c["passed"] is False and c["blocking"]]
    print(f"daily graph on two Celery workers, {celery_run['kind']} warehouse: {celery_run['took']:.1f}s")


def test_the_steps_were_shared_between_both_workers(celery_run):
    workers = celery_run["steps_by_worker"]
    assert sorted(name.split("@")[0] for name in workers) == ["cei-test-1", "cei-test-2"], workers
    every_step = [step for steps in workers.values() for step in steps]
    assert len(every_step) == len(set(every_step)), "no step may run twice"
    assert all(len(steps) >= 3 for steps in workers.values()), {w: len(s) for w, s in workers.items()}


def test_the_steps_travelled_on_the_deployments_own_queue(celery_run):
    # Celery's start-up banner lists the queues a worker consumes: the test's, not the default.
    logs = "\n".join(p.read_text() for p in (celery_run["home"] / "logs").glob("celery-*.log"))
    assert logs.count(f".> {celery_run['queue']} ") == 2, logs[:2000]
    assert ".> dagster " not in logs


def test_the_books_were_built_in_the_one_warehouse_both_workers_wrote(celery_run):
    with celery_run["warehouse"].read() as conn:
        pnl_rows = conn.execute("SELECT count(*) FROM books.daily_pnl WHERE business_date = ?", [DATE]).fetchone()[0]
        positions = conn.execute("SELECT count(*) FROM books.positions WHERE business_date = ?", [DATE]).fetchone()[0]
    assert pnl_rows > 0 and positions > 0
    logs = "\n".join(p.read_text() for p in (celery_run["home"] / "logs").glob("celery-*.log"))
    # Writers queued on the warehouse lock; none met DuckDB's own lock error.
    assert "Could not set lock" not in logs and "Conflicting lock" not in logs
    if celery_run["kind"] == "postgresql":  # nothing of the books went to a DuckDB file
        assert not (celery_run["home"] / "warehouse.duckdb").exists()


def test_the_workers_stop_cleanly_on_ctrl_c(celery_run):
    assert celery_run["services_code"] == 0, celery_run["services_output"]
    assert "stopped celery-1 (exit code 0)" in celery_run["services_output"]
    assert "stopped celery-2 (exit code 0)" in celery_run["services_output"]
