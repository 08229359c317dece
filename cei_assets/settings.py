"""Where CEI keeps its state, resolved from the environment.

Everything CEI writes on the embedded default lives under one folder, ``CEI_HOME``
(``.cei/`` in the project): the Dagster instance, the DuckDB warehouse and the incident
store (``incidents.db``). Pointing ``CEI_HOME`` at an empty folder gives a clean slate; an
explicit ``DAGSTER_HOME``, ``CEI_WAREHOUSE`` or ``CEI_INCIDENTS_URL`` still wins.

``configure_environment()`` must run before Dagster, dbt or Soda are imported by a CEI
entry point: it fixes ``DAGSTER_HOME`` and switches every vendor's telemetry off, so no data
leaves the firm unless an operator turns it on.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

# Telemetry switches of the tools CEI embeds. Set only when the operator has not chosen.
_TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "SODA_CORE_TELEMETRY_ENABLED": "false",
}

# The instance configuration CEI writes into a fresh DAGSTER_HOME. SQLite storage is
# Dagster's default when no storage is named; telemetry is off.
_DEFAULT_DAGSTER_YAML = """\
# Written by CEI for the embedded default: SQLite storage under this folder.
telemetry:
  enabled: false
"""


def cei_home() -> Path:
    return Path(os.environ.get("CEI_HOME") or PROJECT_ROOT / ".cei").resolve()


def dagster_home() -> Path:
    explicit = os.environ.get("DAGSTER_HOME")
    return Path(explicit).resolve() if explicit else cei_home() / "dagster"


def warehouse_path() -> Path:
    explicit = os.environ.get("CEI_WAREHOUSE")
    return Path(explicit).resolve() if explicit else cei_home() / "warehouse.duckdb"


def landing_dir() -> Path:
    """The landing root; ``CEI_LANDING_DIR`` or ``$CEI_HOME/landing`` (where the demo writes)."""
    explicit = os.environ.get("CEI_LANDING_DIR")
    return Path(explicit).resolve() if explicit else cei_home() / "landing"


def incidents_url() -> str:
    """The incident store's database URL: ``CEI_INCIDENTS_URL`` (e.g. ``postgresql+psycopg2://...``)
    or SQLite next to the Dagster instance, ``$CEI_HOME/incidents.db``."""
    explicit = os.environ.get("CEI_INCIDENTS_URL", "").strip()
    return explicit or f"sqlite:///{cei_home() / 'incidents.db'}"


def configure_environment() -> None:
    """Make the process agree on CEI's folders and keep telemetry off. Idempotent."""
    for name, value in _TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    dagster_yaml = home / "dagster.yaml"
    if not dagster_yaml.exists():
        dagster_yaml.write_text(_DEFAULT_DAGSTER_YAML)
    # Resources read these through dg.EnvVar when a run starts, so every process of a
    # deployment (CLI, daemon, webserver, step subprocesses) resolves the same paths.
    os.environ.setdefault("CEI_WAREHOUSE", str(warehouse_path()))
    os.environ.setdefault("CEI_LANDING_DIR", str(landing_dir()))
    warehouse_path().parent.mkdir(parents=True, exist_ok=True)
