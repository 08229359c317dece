"""Secrets come from the environment or the operator's secrets file, and never reach a log.

`cei run` runs the daily graph on the production profile (Dagster's storage on a throwaway
PostgreSQL database) with every secret CEI knows set to a recognisable value, some in the
environment and some in the file CEI_SECRETS_FILE points to. Then everything the run wrote
is searched for them: CEI's logs, the terminal, DAGSTER_HOME (compute logs, dagster.yaml),
every table of the instance's database (event log, runs, tags) and dbt's logs and artifacts.

The values are made up at run time, so the repository holds none of them; a last test checks
the repository holds no credential of the kinds CEI uses.
"""

import datetime as dt
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
from cei_cli import cei
from throwaway_postgres import throwaway_database

from cei_assets.sample_data import generate_landing

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATE = dt.date(2026, 10, 1)
pytestmark = pytest.mark.slow

_TAG = uuid.uuid4().hex[:12]
# name -> recognisable value, shaped like the real thing.
SECRETS_IN_ENV = {
    "CEI_PG_PASSWORD": f"pg-pass-{_TAG}",
    "CEI_SLACK_BOT_TOKEN": f"xoxb-1111-2222-slackbot{_TAG}",
    "CEI_SLACK_WEBHOOK_URL": f"https://hooks.slack.com/services/T0000/B0000/webhook{_TAG}",
    "CEI_CELERY_BROKER": f"amqp://cei:broker{_TAG}@127.0.0.1:5672//",
    "CEI_WAREHOUSE_PG_PASSWORD": f"wh-pass-{_TAG}",
}
SECRETS_IN_FILE = {
    "ANTHROPIC_API_KEY": f"sk-ant-api03-anthropic{_TAG}",
    "CEI_FILE_ONLY_TOKEN": f"file-only-{_TAG}",
}
# What a leak would look like: the secret part of each value.
NEEDLES = [value.split("@")[0].rsplit(":", 1)[-1].rsplit("/", 1)[-1] for value in
           [*SECRETS_IN_ENV.values(), *SECRETS_IN_FILE.values()]]


def _files_with(root: Path, needles: list[str], since: float = 0.0) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.stat().st_mtime < since:
            continue
        content = path.read_bytes()
        hits = [n for n in needles if n.encode() in content]
        if hits:
            found[str(path)] = hits
    return found


def _tables_with(pg_env: dict, needles: list[str]) -> dict[str, list[str]]:
    found = {}
    with psycopg2.connect(host=pg_env["CEI_PG_HOST"], port=pg_env["CEI_PG_PORT"], user=pg_env["CEI_PG_USER"],
                          dbname=pg_env["CEI_PG_DATABASE"]) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT t::text FROM "{table}" t')
            text = "\n".join(row[0] for row in cursor.fetchall())
            hits = [n for n in needles if n in text]
            if hits:
                found[table] = hits
    return found


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets")
    home, landing = root / "home", root / "landing"
    generate_landing(landing, DATE, 1, seed=5, symbols=6, quotes_per_symbol=30, orders_per_day=12)
    secrets_file = root / "cei.secrets"
    secrets_file.write_text("".join(f"{name}={value}\n" for name, value in SECRETS_IN_FILE.items()))
    started = time.time() - 1
    with throwaway_database() as pg_env:
        extra = {**pg_env, **SECRETS_IN_ENV, "CEI_SECRETS_FILE": str(secrets_file)}
        run = cei("run", "--date", DATE.isoformat(), home=home, landing=landing, extra_env=extra)
        tables = _tables_with(pg_env, NEEDLES)
        yield {"home": home, "run": run, "tables": tables, "started": started, "pg_env": pg_env}


def test_the_run_had_every_secret_and_succeeded_on_postgresql(secret_run):
    run = secret_run["run"]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    dagster_yaml = (secret_run["home"] / "dagster" / "dagster.yaml").read_text()
    assert "postgres" in dagster_yaml, "the run must have used the production profile"
    # The search below is not vacuous: CEI's logs and the event log exist and hold the run.
    logs = list((secret_run["home"] / "logs").glob("run-*.log"))
    assert logs and logs[0].stat().st_size > 0


def test_no_secret_is_in_ceis_logs_the_terminal_or_the_dagster_home(secret_run):
    run = secret_run["run"]
    assert not [n for n in NEEDLES if n in run.stdout + run.stderr]
    assert _files_with(secret_run["home"], NEEDLES) == {}


def test_no_secret_is_in_the_instances_database(secret_run):
    assert secret_run["tables"] == {}


def test_no_secret_is_in_dbts_logs_or_artifacts(secret_run):
    dbt_dir = PROJECT_ROOT / "dbt_project"
    written = [p for folder in ("logs", "target") for p in (dbt_dir / folder).rglob("*")
               if p.is_file() and p.stat().st_mtime >= secret_run["started"]]
    assert written, "dbt wrote nothing during the run: the search would prove nothing"
    leaks = {str(p): [n for n in NEEDLES if n.encode() in p.read_bytes()] for p in written}
    assert {p: hits for p, hits in leaks.items() if hits} == {}


# Shapes of real credentials of the services CEI talks to.
CREDENTIAL_PATTERNS = {
    "Slack token": re.compile(rb"xox[abposr]-[0-9]{6,}-[0-9]{6,}-[A-Za-z0-9-]{10,}"),
    "Slack webhook": re.compile(rb"hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}"),
    "Anthropic key": re.compile(rb"sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{40,}"),
    "private key": re.compile(rb"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
}
# Files that hold secrets by their nature: an operator's, never the repository's.
SECRET_FILE_NAMES = re.compile(r"(^|/)(\.env(\..+)?|.*\.(pem|key|p12|secrets)|\.pgpass|secrets?\.(ya?ml|json|env))$")


def test_the_repository_holds_no_credentials():
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    found = [f"{name}: a secrets file" for name in tracked if SECRET_FILE_NAMES.search(name)]
    for name in tracked:
        path = PROJECT_ROOT / name
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        content = path.read_bytes()
        found += [f"{name}: {kind}" for kind, pattern in CREDENTIAL_PATTERNS.items() if pattern.search(content)]
    assert found == []
