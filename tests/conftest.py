"""Shared fixtures: every test gets its own CEI_HOME, so nothing leaks between tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Telemetry off before anything imports dbt, Dagster or Soda.
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cei_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "cei_home"
    monkeypatch.setenv("CEI_HOME", str(home))
    for name in ("DAGSTER_HOME", "CEI_WAREHOUSE", "CEI_WAREHOUSE_URL", "CEI_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home
