"""Where CEI keeps its state and which deployment profile it runs, resolved from the environment.

Everything CEI writes on the embedded default lives under one folder, ``CEI_HOME``
(``.cei/`` in the project): the Dagster instance, the DuckDB warehouse and the incident
store (``incidents.db``). Pointing ``CEI_HOME`` at an empty folder gives a clean slate; an
explicit ``DAGSTER_HOME``, ``CEI_WAREHOUSE`` or ``CEI_INCIDENTS_URL`` still wins.

Two profiles, chosen by configuration alone (``CEI_PROFILE``, or the presence of
``CEI_PG_HOST``/``CEI_PG_DATABASE``):

- ``embedded`` (the default): Dagster's SQLite storage under ``DAGSTER_HOME``; runs start
  where they are launched.
- ``production``: Dagster's run, event-log and schedule storage on PostgreSQL
  (dagster-postgres), runs queued by the daemon with a concurrency limit, the incident store
  on the same server. ``dagster.yaml`` names the environment variables that hold the server's
  coordinates and password (Dagster's ``env:`` syntax), so no secret is ever written to disk.

Secrets come only from the environment or from a file the operator points to with
``CEI_SECRETS_FILE`` (``KEY=VALUE`` lines, loaded without overriding what is already set).

``configure_environment()`` must run before Dagster, dbt or Soda are imported by a CEI
entry point: it loads the secrets file, writes ``dagster.yaml`` for the profile, fixes
``DAGSTER_HOME`` and switches every vendor's telemetry off, so no data leaves the firm unless
an operator turns it on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

EMBEDDED = "embedded"
PRODUCTION = "production"
PROFILES = (EMBEDDED, PRODUCTION)

# Telemetry switches of the tools CEI embeds. Set only when the operator has not chosen.
_TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "SODA_CORE_TELEMETRY_ENABLED": "false",
}

# Every dagster.yaml CEI writes starts with this; a file without it is the operator's own and
# is never touched.
_WRITTEN_BY_CEI = "# Written by CEI"

# The embedded default: SQLite storage is Dagster's default when no storage is named.
# In every profile: telemetry off, and no "join the community" form in the UI (it would send
# an address to Dagster's servers).
_DEFAULT_DAGSTER_YAML = """\
# Written by CEI for the embedded default: SQLite storage under this folder.
telemetry:
  enabled: false
nux:
  enabled: false
"""

# The production profile. Every coordinate and the password are read from the environment
# by Dagster when the instance loads, in whichever process loads it (CLI, daemon, webserver,
# run workers, Celery workers): nothing secret is in this file.
_PRODUCTION_DAGSTER_YAML = """\
# Written by CEI for the production profile: storage on PostgreSQL, runs queued by the daemon.
# The server's coordinates and password are read from the environment (CEI_PG_*); no secret is
# written here. Rewritten by CEI when the profile changes; remove this header to keep your own.
storage:
  postgres:
    postgres_db:
      hostname:
        env: CEI_PG_HOST
      port:
        env: CEI_PG_PORT
      db_name:
        env: CEI_PG_DATABASE
      username:
        env: CEI_PG_USER
      password:
        env: CEI_PG_PASSWORD
      # psycopg2, the driver dagster-postgres is written for: SQLAlchemy 2.1 would otherwise pick
      # psycopg 3 when it is installed, on which Dagster's event log fails (NOTIFY with a bound value).
      scheme: postgresql+psycopg2
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs:
      env: CEI_MAX_CONCURRENT_RUNS
run_launcher:
  module: dagster.core.launcher
  class: DefaultRunLauncher
# A run whose process died is marked failed instead of staying "started" forever.
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
telemetry:
  enabled: false
nux:
  enabled: false
"""

# What the production profile needs from the operator, and the defaults of the rest.
_PG_REQUIRED = ("CEI_PG_HOST", "CEI_PG_DATABASE", "CEI_PG_USER")
_PRODUCTION_DEFAULTS = {
    "CEI_PG_PORT": "5432",
    "CEI_PG_PASSWORD": "",  # trust or peer authentication; Dagster needs the variable set
    # One run at a time: every run writes the one DuckDB warehouse, and the daily books roll
    # forward date after date, so a queue that releases runs in order is what the books need.
    "CEI_MAX_CONCURRENT_RUNS": "1",
}

# Where the Celery executor sends steps when ``CEI_EXECUTOR=celery``: the local RabbitMQ, with
# results returned over the same broker. Celery workers must be started on the same broker.
_CELERY_DEFAULTS = {
    "CEI_CELERY_BROKER": "amqp://guest:guest@127.0.0.1:5672//",
    "CEI_CELERY_BACKEND": "rpc://",
    # The queue the executor sends steps to and the workers consume: dagster-celery's default.
    # Two deployments on one broker (or vhost) keep their steps apart with their own names.
    "CEI_CELERY_QUEUE": "dagster",
}

_SECRET_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


class SettingsError(ValueError):
    """The environment does not describe a deployment CEI can run; the message says what to fix."""


def cei_home() -> Path:
    return Path(os.environ.get("CEI_HOME") or PROJECT_ROOT / ".cei").resolve()


def dagster_home() -> Path:
    explicit = os.environ.get("DAGSTER_HOME")
    return Path(explicit).resolve() if explicit else cei_home() / "dagster"


def warehouse_path() -> Path:
    explicit = os.environ.get("CEI_WAREHOUSE")
    return Path(explicit).resolve() if explicit else cei_home() / "warehouse.duckdb"


def warehouse_url() -> str:
    """``CEI_WAREHOUSE_URL``: a PostgreSQL URL selects the PostgreSQL warehouse; empty, DuckDB."""
    return os.environ.get("CEI_WAREHOUSE_URL", "").strip()


def landing_dir() -> Path:
    """The landing root; ``CEI_LANDING_DIR`` or ``$CEI_HOME/landing`` (where the demo writes)."""
    explicit = os.environ.get("CEI_LANDING_DIR")
    return Path(explicit).resolve() if explicit else cei_home() / "landing"


def logs_dir() -> Path:
    """Where CEI's own processes log: runs of ``cei run``, the daemon and the webserver."""
    return cei_home() / "logs"


def profile() -> str:
    """``CEI_PROFILE`` when set; otherwise production as soon as a PostgreSQL server is named."""
    chosen = os.environ.get("CEI_PROFILE", "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise SettingsError(f"CEI_PROFILE must be one of {', '.join(PROFILES)}, not {chosen!r}")
        return chosen
    if os.environ.get("CEI_PG_HOST", "").strip() or os.environ.get("CEI_PG_DATABASE", "").strip():
        return PRODUCTION
    return EMBEDDED


def incidents_url() -> str:
    """The incident store's database URL: ``CEI_INCIDENTS_URL`` (e.g. ``postgresql+psycopg2://...``);
    on the production profile the Dagster instance's PostgreSQL database; otherwise SQLite next to
    the Dagster instance, ``$CEI_HOME/incidents.db``."""
    explicit = os.environ.get("CEI_INCIDENTS_URL", "").strip()
    if explicit:
        return explicit
    if profile() == PRODUCTION:
        return _postgres_url()
    return f"sqlite:///{cei_home() / 'incidents.db'}"


def _postgres_url() -> str:
    # Built in memory from the environment, never written anywhere.
    _require_postgres()
    user = quote(os.environ["CEI_PG_USER"], safe="")
    password = os.environ.get("CEI_PG_PASSWORD", "")
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    host, port = os.environ["CEI_PG_HOST"], os.environ.get("CEI_PG_PORT") or _PRODUCTION_DEFAULTS["CEI_PG_PORT"]
    return f"postgresql+psycopg2://{credentials}@{host}:{port}/{quote(os.environ['CEI_PG_DATABASE'], safe='')}"


def _require_postgres() -> None:
    missing = [name for name in _PG_REQUIRED if not os.environ.get(name, "").strip()]
    if missing:
        raise SettingsError(
            f"the production profile needs {', '.join(missing)} (the PostgreSQL server of the Dagster "
            "instance); set them in the environment or in the file CEI_SECRETS_FILE points to"
        )
    port = os.environ.get("CEI_PG_PORT", "").strip()
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise SettingsError(f"CEI_PG_PORT must be a TCP port number, not {port!r}")
    limit = os.environ.get("CEI_MAX_CONCURRENT_RUNS", "").strip()
    if limit and not (limit.isdigit() and int(limit) > 0):
        raise SettingsError(f"CEI_MAX_CONCURRENT_RUNS must be a whole number of runs above 0, not {limit!r}")


def load_secrets_file() -> list[str]:
    """Load ``CEI_SECRETS_FILE`` (``KEY=VALUE`` lines) into the environment; return the names set.

    What the environment already holds wins: an operator's explicit variable is never
    overridden by a file. Blank lines and ``#`` comments are skipped, ``export`` and matching
    quotes around a value are accepted. Errors name the file and the line, never its content.
    """
    pointer = os.environ.get("CEI_SECRETS_FILE", "").strip()
    if not pointer:
        return []
    path = Path(pointer).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"CEI_SECRETS_FILE points to {path}, which does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise SettingsError(f"CEI_SECRETS_FILE {path} cannot be read: {reason}") from None
    loaded = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _SECRET_LINE.match(stripped)
        if match is None:
            raise SettingsError(f"{path} line {number} is not KEY=VALUE (names are letters, digits and _)")
        name, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name not in os.environ:
            os.environ[name] = value
            loaded.append(name)
    return loaded


def dagster_yaml_text(chosen_profile: str) -> str:
    return _PRODUCTION_DAGSTER_YAML if chosen_profile == PRODUCTION else _DEFAULT_DAGSTER_YAML


def _write_dagster_yaml(home: Path, chosen_profile: str) -> None:
    """Write the profile's instance configuration unless the operator keeps their own file."""
    dagster_yaml = home / "dagster.yaml"
    wanted = dagster_yaml_text(chosen_profile)
    if dagster_yaml.exists():
        current = dagster_yaml.read_text()
        if current == wanted or not current.startswith(_WRITTEN_BY_CEI):
            return
    # Atomic: a daemon or webserver starting at the same moment reads the old or the new file.
    partial = home / f".dagster.yaml.{os.getpid()}"
    partial.write_text(wanted)
    partial.replace(dagster_yaml)


def celery_broker_and_backend() -> tuple[str, str]:
    """The Celery broker and result backend of the executor and its workers (defaults set in the
    environment, so every process of the deployment agrees)."""
    for name, value in _CELERY_DEFAULTS.items():
        if not os.environ.get(name, "").strip():
            os.environ[name] = value
    return os.environ["CEI_CELERY_BROKER"], os.environ["CEI_CELERY_BACKEND"]


def celery_queue() -> str:
    """``CEI_CELERY_QUEUE``: the Celery queue of the daily job's steps (default ``dagster``)."""
    return os.environ.get("CEI_CELERY_QUEUE", "").strip() or _CELERY_DEFAULTS["CEI_CELERY_QUEUE"]


EXECUTORS = ("in_process", "multiprocess", "celery")


def executor() -> str:
    """``CEI_EXECUTOR``: how the daily job runs its steps (see cei_assets/jobs.py); default in process."""
    choice = os.environ.get("CEI_EXECUTOR", "").strip() or "in_process"
    if choice not in EXECUTORS:
        raise SettingsError(f"CEI_EXECUTOR must be {', '.join(EXECUTORS[:-1])} or {EXECUTORS[-1]}, not {choice!r}")
    return choice


def check_environment() -> str:
    """Load the secrets file and check the profile's variables, writing nothing; return the profile.

    Raises ``SettingsError`` with what to fix when the environment is incomplete.
    """
    load_secrets_file()
    chosen = profile()
    executor()
    if chosen == PRODUCTION:
        _require_postgres()
    url = warehouse_url()
    if url:  # the PostgreSQL warehouse (docs/warehouse.md)
        from cei_assets.warehouse_postgres import parse_url

        parse_url(url)  # a WarehouseURLError is a SettingsError
    return chosen


def configure_environment() -> None:
    """Make the process agree on CEI's folders and profile and keep telemetry off. Idempotent.

    Raises ``SettingsError`` with what to fix when the environment is incomplete.
    """
    chosen = check_environment()
    for name, value in _TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
    if chosen == PRODUCTION:
        for name, value in _PRODUCTION_DEFAULTS.items():
            if not os.environ.get(name, "").strip():
                os.environ[name] = value
    if os.environ.get("CEI_EXECUTOR", "").strip() == "celery":
        celery_broker_and_backend()
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    _write_dagster_yaml(home, chosen)
    # Resources read these through dg.EnvVar when a run starts, so every process of a
    # deployment (CLI, daemon, webserver, step subprocesses) resolves the same paths.
    os.environ.setdefault("CEI_WAREHOUSE", str(warehouse_path()))
    os.environ.setdefault("CEI_WAREHOUSE_URL", "")  # empty: the DuckDB file above; set: PostgreSQL
    os.environ.setdefault("CEI_LANDING_DIR", str(landing_dir()))
    warehouse_path().parent.mkdir(parents=True, exist_ok=True)
