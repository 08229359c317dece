"""Everything CEI writes on the embedded default lives under CEI_HOME; explicit paths still win."""

import subprocess
import sys
from pathlib import Path

import yaml


def _resolve(env: dict) -> dict:
    code = (
        "import json, os\n"
        "from cei_assets import settings\n"
        "settings.configure_environment()\n"
        "print(json.dumps({'dagster_home': os.environ['DAGSTER_HOME'], 'warehouse': str(settings.warehouse_path()),"
        " 'landing': str(settings.landing_dir()), 'dbt_stats': os.environ['DBT_SEND_ANONYMOUS_USAGE_STATS'],"
        " 'soda': os.environ['SODA_CORE_TELEMETRY_ENABLED']}))\n"
    )
    clean = {k: v for k, v in env.items()}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout)


def _base_env(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("DAGSTER_HOME", "CEI_WAREHOUSE", "CEI_LANDING_DIR", "CEI_HOME",
                        "DBT_SEND_ANONYMOUS_USAGE_STATS", "SODA_CORE_TELEMETRY_ENABLED", "DO_NOT_TRACK")}
    env["CEI_HOME"] = str(tmp_path / "home")
    return env


def test_an_empty_cei_home_holds_the_instance_and_the_warehouse_with_telemetry_off(tmp_path):
    resolved = _resolve(_base_env(tmp_path))
    home = tmp_path / "home"
    assert resolved["dagster_home"] == str(home / "dagster")
    assert resolved["warehouse"] == str(home / "warehouse.duckdb")
    assert resolved["landing"] == str(home / "landing")
    instance_config = yaml.safe_load((home / "dagster" / "dagster.yaml").read_text())
    assert instance_config["telemetry"]["enabled"] is False
    assert resolved["dbt_stats"] == "false" and resolved["soda"] == "false"


def test_explicit_dagster_home_and_warehouse_win_over_cei_home(tmp_path):
    env = _base_env(tmp_path)
    env["DAGSTER_HOME"] = str(tmp_path / "elsewhere")
    env["CEI_WAREHOUSE"] = str(tmp_path / "wh" / "books.duckdb")
    resolved = _resolve(env)
    assert resolved["dagster_home"] == str(tmp_path / "elsewhere")
    assert resolved["warehouse"] == str(tmp_path / "wh" / "books.duckdb")
    assert not (tmp_path / "home" / "dagster").exists()


def test_an_operators_own_dagster_yaml_is_left_alone(tmp_path):
    env = _base_env(tmp_path)
    dagster_home = Path(tmp_path / "ops")
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    env["DAGSTER_HOME"] = str(dagster_home)
    _resolve(env)
    assert (dagster_home / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"
