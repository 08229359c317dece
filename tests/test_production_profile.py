"""The production profile: the same code on PostgreSQL, queued runs, retries, secrets from the
environment, chosen by configuration alone.

These run the real services: the machine's PostgreSQL (a throwaway database per test),
Dagster's instance loaded from the dagster.yaml CEI writes, `bin/cei-services` starting
dagster-daemon and dagster-webserver, a run submitted through the webserver's GraphQL API and
launched by the daemon's queue.
"""

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from cei_cli import CEI, cei
from services import assert_stopped_cleanly, cei_services, clean_env, graphql
from throwaway_postgres import throwaway_database

from cei_assets.landing import ORDERS
from cei_assets.sample_data import generate_landing

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATE = dt.date(2026, 10, 1)
PG_PASSWORD = "pg-Secret-7f3a9c"  # the server trusts loopback, so any password connects

def in_subprocess(code: str, env: dict) -> dict:
    """Run ``code`` (which prints one JSON line last) in a fresh interpreter, as a CEI process would."""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def postgres():
    with throwaway_database() as pg_env:
        yield pg_env


# --------------------------------------------------------------------------- the profile


def test_the_production_profile_keeps_dagsters_storage_on_postgresql_and_no_secret_on_disk(tmp_path, postgres):
    env = clean_env(tmp_path / "home", **postgres, CEI_PG_PASSWORD=PG_PASSWORD, CEI_MAX_CONCURRENT_RUNS="3")
    seen = in_subprocess(
        "import json\n"
        "from cei_assets import settings\n"
        "settings.configure_environment()\n"
        "import dagster as dg\n"
        "instance = dg.DagsterInstance.get()\n"
        "print(json.dumps({'profile': settings.profile(),\n"
        "  'storage': [type(s).__name__ for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)],\n"
        "  'coordinator': type(instance.run_coordinator).__name__,\n"
        "  'max_runs': instance.run_coordinator.get_run_queue_config().max_concurrent_runs,\n"
        "  'telemetry': instance.telemetry_enabled}))\n",
        env,
    )
    assert seen["profile"] == "production"
    assert seen["storage"] == ["PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"]
    assert seen["coordinator"] == "QueuedRunCoordinator" and seen["max_runs"] == 3
    assert seen["telemetry"] is False

    # Dagster created its tables in the operator's database, not in a file under DAGSTER_HOME.
    import psycopg2

    with psycopg2.connect(host=postgres["CEI_PG_HOST"], user=postgres["CEI_PG_USER"], dbname=postgres["CEI_PG_DATABASE"]) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            tables = {row[0] for row in cursor.fetchall()}
    assert {"runs", "event_logs", "jobs", "asset_keys"} <= tables
    dagster_home = tmp_path / "home" / "dagster"
    assert not list(dagster_home.rglob("*.db")), "the production profile must not fall back to SQLite"

    # dagster.yaml names the variables; their values (password, host, database) are nowhere on disk.
    text = (dagster_home / "dagster.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "CEI_PG_PASSWORD"}
    assert config["storage"]["postgres"]["postgres_db"]["db_name"] == {"env": "CEI_PG_DATABASE"}
    assert config["run_coordinator"]["config"]["max_concurrent_runs"] == {"env": "CEI_MAX_CONCURRENT_RUNS"}
    assert config["telemetry"] == {"enabled": False}
    for path in (tmp_path / "home").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert PG_PASSWORD.encode() not in content and postgres["CEI_PG_DATABASE"].encode() not in content, path


def test_the_profile_follows_the_configuration_and_an_operators_own_dagster_yaml_is_kept(tmp_path):
    home = tmp_path / "home"
    show = "import json\nfrom cei_assets import settings\nsettings.configure_environment()\nprint(json.dumps(settings.profile()))\n"
    dagster_yaml = home / "dagster" / "dagster.yaml"

    assert in_subprocess(show, clean_env(home)) == "embedded"
    assert "storage" not in yaml.safe_load(dagster_yaml.read_text())  # SQLite, Dagster's default
    # Naming a server is enough to choose production (the server need not be up to write the file).
    pg = {"CEI_PG_HOST": "db.internal", "CEI_PG_DATABASE": "cei", "CEI_PG_USER": "cei"}
    assert in_subprocess(show, clean_env(home, **pg)) == "production"
    assert "postgres" in yaml.safe_load(dagster_yaml.read_text())["storage"]
    assert in_subprocess(show, clean_env(home, **pg, CEI_PROFILE="embedded")) == "embedded"
    assert "storage" not in yaml.safe_load(dagster_yaml.read_text())

    dagster_yaml.write_text("telemetry:\n  enabled: false\n# the platform team's own\n")
    assert in_subprocess(show, clean_env(home, **pg)) == "production"
    assert dagster_yaml.read_text() == "telemetry:\n  enabled: false\n# the platform team's own\n"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"CEI_PG_HOST": "db.internal"}, "needs CEI_PG_DATABASE, CEI_PG_USER"),
        ({"CEI_PROFILE": "production"}, "needs CEI_PG_HOST, CEI_PG_DATABASE, CEI_PG_USER"),
        ({"CEI_PROFILE": "prod"}, "CEI_PROFILE must be one of embedded, production, not 'prod'"),
        ({"CEI_PG_HOST": "h", "CEI_PG_DATABASE": "d", "CEI_PG_USER": "u", "CEI_MAX_CONCURRENT_RUNS": "many"},
         "CEI_MAX_CONCURRENT_RUNS must be a whole number of runs above 0, not 'many'"),
        ({"CEI_PG_HOST": "h", "CEI_PG_DATABASE": "d", "CEI_PG_USER": "u", "CEI_PG_PORT": "54x"},
         "CEI_PG_PORT must be a TCP port number, not '54x'"),
    ],
)
def test_an_incomplete_deployment_is_refused_with_what_to_set_not_a_traceback(tmp_path, settings, expected):
    out = subprocess.run([CEI, "status", "--date", DATE.isoformat()], env=clean_env(tmp_path / "home", **settings),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert expected in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "home").exists(), "nothing is written for a deployment CEI refused"


def test_on_the_production_profile_the_incident_store_lives_on_the_same_server(tmp_path):
    env = clean_env(tmp_path / "home", CEI_PG_HOST="db.internal", CEI_PG_PORT="6432", CEI_PG_DATABASE="cei",
                    CEI_PG_USER="cei ops", CEI_PG_PASSWORD="p@ss:word/1")
    code = "import json\nfrom cei_assets import settings\nprint(json.dumps(settings.incidents_url()))\n"
    assert in_subprocess(code, env) == "postgresql+psycopg2://cei%20ops:p%40ss%3Aword%2F1@db.internal:6432/cei"
    assert in_subprocess(code, {**env, "CEI_INCIDENTS_URL": "sqlite:////srv/incidents.db"}) == "sqlite:////srv/incidents.db"


# --------------------------------------------------------------------------- secrets


def test_a_secrets_file_fills_the_environment_without_overriding_what_is_set(tmp_path):
    secrets = tmp_path / "cei.secrets"
    secrets.write_text(
        "# CEI secrets, read by every CEI process\n"
        "\n"
        "CEI_PG_HOST=127.0.0.1\n"
        "CEI_PG_DATABASE=cei\n"
        "export CEI_PG_USER=cei\n"
        "CEI_PG_PASSWORD='from the file'\n"
        'ANTHROPIC_API_KEY="sk-ant-from-file"\n'
        "SLACK_BOT_TOKEN = xoxb-from-file\n"
    )
    env = clean_env(tmp_path / "home", CEI_SECRETS_FILE=str(secrets), ANTHROPIC_API_KEY="sk-ant-from-env")
    code = (
        "import json, os\nfrom cei_assets import settings\nsettings.configure_environment()\n"
        "print(json.dumps({k: os.environ.get(k) for k in ('CEI_PG_HOST', 'CEI_PG_USER', 'CEI_PG_PASSWORD', "
        "'ANTHROPIC_API_KEY', 'SLACK_BOT_TOKEN')} | {'profile': settings.profile()}))\n"
    )
    seen = in_subprocess(code, env)
    assert seen == {
        "CEI_PG_HOST": "127.0.0.1", "CEI_PG_USER": "cei", "CEI_PG_PASSWORD": "from the file",
        "ANTHROPIC_API_KEY": "sk-ant-from-env",  # the operator's explicit variable wins
        "SLACK_BOT_TOKEN": "xoxb-from-file", "profile": "production",
    }


def test_a_bad_secrets_file_is_refused_by_line_number_without_echoing_its_content(tmp_path):
    secrets = tmp_path / "cei.secrets"
    secrets.write_text("CEI_PG_PASSWORD=fine\nxoxb-pasted-token-without-a-name\n")
    out = cei("status", "--date", DATE.isoformat(), home=tmp_path / "home", extra_env={"CEI_SECRETS_FILE": str(secrets)})
    assert out.returncode == 2
    assert f"{secrets} line 2 is not KEY=VALUE" in out.stderr
    assert "xoxb-pasted" not in out.stderr + out.stdout

    missing = cei("status", "--date", DATE.isoformat(), home=tmp_path / "home",
                  extra_env={"CEI_SECRETS_FILE": str(tmp_path / "nowhere")})
    assert missing.returncode == 2 and "which does not exist" in missing.stderr


# --------------------------------------------------------------------------- retries of the landing steps


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    generate_landing(root, DATE, 1, seed=3, symbols=5, quotes_per_symbol=5, orders_per_day=6)
    return root


def _materialize_orders(landing: Path, warehouse: Path, lock_timeout: float = 0.3):
    from cei_assets.assets.landing import build_landing_asset
    from cei_assets.resources import LandingZoneResource, WarehouseResource

    asset = build_landing_asset(ORDERS)  # its retry policy read from the environment, as at load
    started = time.monotonic()
    result = dg.materialize(
        [asset],
        partition_key=DATE.isoformat(),
        resources={
            "warehouse": WarehouseResource(path=str(warehouse), lock_timeout_seconds=lock_timeout),
            "landing": LandingZoneResource(root=str(landing)),
        },
        raise_on_error=False,
    )
    return result, time.monotonic() - started, asset


def _event_types(result) -> list[str]:
    return [event.event_type_value for event in result.all_events]


class _WarehouseHeldElsewhere:
    """Another process (a long dbt build, an analyst's session) holding the warehouse's lock."""

    def __init__(self, warehouse: Path, seconds: float):
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        code = (
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code, f"{warehouse}.lock", str(seconds)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "held"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def test_a_landing_step_retries_a_transient_failure_with_exponential_backoff_and_jitter(tmp_path, small_landing, monkeypatch):
    monkeypatch.setenv("CEI_LANDING_MAX_RETRIES", "6")
    monkeypatch.setenv("CEI_LANDING_RETRY_DELAY", "0.2")
    warehouse = tmp_path / "warehouse.duckdb"
    with _WarehouseHeldElsewhere(warehouse, seconds=4.0):
        result, took, asset = _materialize_orders(small_landing, warehouse)

    policy = asset.op.retry_policy
    assert (policy.max_retries, policy.delay) == (6, 0.2)
    assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
    assert result.success
    retries = _event_types(result).count("STEP_UP_FOR_RETRY")
    assert retries >= 1, "the first attempt met the held warehouse and must have been retried"
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "landing_file"
    assert result.asset_materializations_for_node(asset.op.name)


def test_a_transient_failure_that_outlasts_the_retries_fails_the_files_check_with_the_error(tmp_path, small_landing, monkeypatch):
    monkeypatch.setenv("CEI_LANDING_MAX_RETRIES", "1")
    monkeypatch.setenv("CEI_LANDING_RETRY_DELAY", "0.1")
    warehouse = tmp_path / "warehouse.duckdb"
    with _WarehouseHeldElsewhere(warehouse, seconds=60):
        result, took, asset = _materialize_orders(small_landing, warehouse)

    assert not result.success
    assert _event_types(result).count("STEP_UP_FOR_RETRY") == 1
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "could not be loaded after 2 attempt(s)" in check.description
    assert "lock" in check.description
    assert not result.asset_materializations_for_node(asset.op.name), "nothing downstream may see a partial load"


def test_a_missing_landing_file_fails_its_blocking_check_at_once_without_retrying(tmp_path, small_landing, monkeypatch):
    # Waits this long would show: a retry of a missing file would take tens of seconds.
    monkeypatch.setenv("CEI_LANDING_MAX_RETRIES", "3")
    monkeypatch.setenv("CEI_LANDING_RETRY_DELAY", "30")
    landing = tmp_path / "landing"
    (landing / DATE.isoformat()).mkdir(parents=True)
    result, took, _ = _materialize_orders(landing, tmp_path / "warehouse.duckdb")

    assert not result.success
    assert "STEP_UP_FOR_RETRY" not in _event_types(result)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and "missing landing file" in check.description
    assert took < 20


def test_an_error_that_is_not_transient_fails_the_step_at_once_naming_it(tmp_path, small_landing, monkeypatch):
    monkeypatch.setenv("CEI_LANDING_MAX_RETRIES", "3")
    monkeypatch.setenv("CEI_LANDING_RETRY_DELAY", "30")
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.mkdir()  # a misconfiguration: another attempt would fail the same way
    result, took, _ = _materialize_orders(small_landing, warehouse)

    assert not result.success
    assert "STEP_UP_FOR_RETRY" not in _event_types(result)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "loading orders failed" in failure.step_failure_data.error.message
    assert took < 20


def test_only_io_errors_that_may_pass_count_as_transient():
    import errno

    from cei_assets.assets.landing import is_transient
    from cei_assets.warehouse import WarehouseLockTimeout

    for code in (errno.EIO, errno.ESTALE, errno.ETIMEDOUT, errno.EAGAIN):
        assert is_transient(OSError(code, os.strerror(code), "/landing/2026-10-01/orders.csv"))
    assert is_transient(WarehouseLockTimeout("waited 900s for the exclusive lock"))
    for code in (errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOSPC):
        assert not is_transient(OSError(code, os.strerror(code)))
    assert not is_transient(ValueError("not a date"))


def test_retry_settings_that_make_no_sense_are_refused_when_the_code_loads(monkeypatch):
    from cei_assets.assets.landing import landing_retry_policy

    monkeypatch.setenv("CEI_LANDING_MAX_RETRIES", "-1")
    with pytest.raises(ValueError, match="CEI_LANDING_MAX_RETRIES must be a whole number of at least 0, not '-1'"):
        landing_retry_policy()
    monkeypatch.setenv("CEI_LANDING_MAX_RETRIES", "2")
    monkeypatch.setenv("CEI_LANDING_RETRY_DELAY", "soon")
    with pytest.raises(ValueError, match="CEI_LANDING_RETRY_DELAY must be a number of seconds"):
        landing_retry_policy()


# --------------------------------------------------------------------------- cei run --queue on code that does not load


def _run_queued(command: list[str], env: dict) -> tuple[subprocess.CompletedProcess, str]:
    """`cei run --queue` for DATE; the run's outcome and the one stderr line saying the code failed to load."""
    run = subprocess.run([*command, "run", "--date", DATE.isoformat(), "--queue", "--wait-timeout", "1"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "queued run" not in run.stdout, "no run is submitted from code that did not load"
    said = [line for line in run.stderr.splitlines() if "failed to load" in line]
    assert len(said) == 1, run.stderr
    return run, said[0]


def test_a_queued_run_on_a_module_with_a_syntax_error_names_the_error_and_where_the_full_report_is(tmp_path):
    home = tmp_path / "home"
    (home / "landing").mkdir(parents=True)
    (tmp_path / "broken.py").write_text("import dagster as dg\n\ndefs = dg.Definitions(assets=[]\n")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_file": {"relative_path": "broken.py", "location_name": "cei"}}]}))
    # The console script, its code location read from this workspace instead of the project's.
    cei_on_workspace = [sys.executable, "-c",
                        "import sys\nfrom pathlib import Path\nimport cei_assets.queued_runs as queued\n"
                        f"queued.WORKSPACE_FILE = Path({str(workspace)!r})\n"
                        "from cei_assets.cli import app\napp(sys.argv[1:])\n"]

    _, line = _run_queued(cei_on_workspace, clean_env(home))

    assert f"the code location cei of {workspace} failed to load: SyntaxError:" in line
    assert f"({tmp_path / 'broken.py'}, line 3)" in line
    full_report = Path(line.rsplit("full error in ", 1)[1])
    assert full_report.is_relative_to(home / "logs") and "SyntaxError" in full_report.read_text()


@pytest.mark.parametrize("how", [["--queue", "--wait-timeout", "1"], ["--select", "group:landing"], []],
                         ids=["queued", "selected", "in-process"])
def test_a_run_on_a_setting_the_definitions_cannot_use_is_refused_naming_the_setting(tmp_path, how):
    # Checked before anything loads: the same sentence whichever way the run would have gone.
    home = tmp_path / "home"
    (home / "landing").mkdir(parents=True)
    run = subprocess.run([CEI, "run", "--date", DATE.isoformat(), *how], env=clean_env(home, CEI_EXECUTOR="threads"),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "CEI_EXECUTOR must be in_process, multiprocess or celery, not 'threads'" in run.stderr
    assert "queued run" not in run.stdout and "running the daily graph" not in run.stdout


# --------------------------------------------------------------------------- daemon and webserver


LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


@pytest.mark.slow
def test_cei_services_runs_the_daemon_and_webserver_on_postgresql_and_queued_runs_are_launched(tmp_path, small_landing, postgres):
    home = tmp_path / "home"
    env = clean_env(home, **postgres, CEI_PG_PASSWORD=PG_PASSWORD, CEI_LANDING_DIR=str(small_landing))
    with cei_services(env) as services:
        # The UI's "Materialize" on the landing group of one date: queued, then launched by the daemon.
        landing_keys = [{"path": ["landing", name]} for name in ("securities", "accounts", "orders")]
        launched = graphql(services.url, LAUNCH, {"params": {
            "selector": {"repositoryLocationName": "cei", "repositoryName": "__repository__",
                         "jobName": "daily_books", "assetSelection": landing_keys},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DATE.isoformat()}]},
        }})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        assert launched["run"]["status"] == "QUEUED", "the production profile queues runs for the daemon"
        run_id = launched["run"]["runId"]
        statuses = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = graphql(services.url, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
            if not statuses or statuses[-1] != status:
                statuses.append(status)
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(1)
        assert statuses[-1] == "SUCCESS", f"{statuses}; daemon log:\n{(home / 'logs' / 'daemon.log').read_text()[-3000:]}"
        assert "QueuedRunCoordinatorDaemon" in (home / "logs" / "daemon.log").read_text()
    # Every service ran in a session of its own; nothing of any of them (code servers, run
    # workers) may outlive the stop.
    assert_stopped_cleanly(services)
    for name in ("daemon", "webserver"):
        assert (home / "logs" / f"{name}.log").stat().st_size > 0
