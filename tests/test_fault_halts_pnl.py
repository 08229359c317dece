"""Through Dagster: a blocking single-table fault fails its table's check and halts the P&L.

Each fault gets its own landing root and CEI home; the run is the real `cei run`. The whole
catalogue is walked on the engines in test_fault_catalogue.py (seconds); here one fault of each
kind (an unreadable file, a bad mark, inconsistent FX) goes through Dagster end to end, which
costs about half a minute a fault. Measured: all twelve blocking single-table faults pass here.
"""

import datetime as dt
import json

import pytest
from cei_cli import cei
from test_fault_catalogue import SINGLE_TABLE_FAULTS

from cei_assets.sample_data import generate_landing

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 10, 1)
REPRESENTATIVE = ("missing_file", "eod_mark_decimal_shift", "fx_cross_inconsistent")
BLOCKING = [f for f in SINGLE_TABLE_FAULTS if f.blocking_expected and f.name in REPRESENTATIVE]


@pytest.mark.parametrize("fault", BLOCKING, ids=lambda f: f.name)
def test_a_blocking_fault_fails_a_check_on_its_table_and_the_pnl_is_not_materialized(fault, tmp_path):
    landing, home = tmp_path / "landing", tmp_path / "home"
    generate_landing(landing, DAY, 1, seed=8, symbols=8, quotes_per_symbol=120, orders_per_day=12,
                     fault=fault.name, fault_date=DAY)
    run = cei("run", "--date", DAY.isoformat(), home=home, landing=landing)
    assert run.returncode == 1, run.stdout
    report = json.loads(cei("status", "--date", DAY.isoformat(), "--json", home=home).stdout)
    table = f"landing/{fault.datasets[0]}"
    failed = [c for c in report["checks"] if c["asset"] == table and c["passed"] is False]
    assert any(c["blocking"] and c["severity"] == "ERROR" for c in failed), failed
    assert any(c["description"] and c["description"] in run.stdout for c in failed) or \
        any(c["name"] in run.stdout for c in failed)
    pnl = next(a for a in report["assets"] if a["key"] == "daily_pnl")
    assert not pnl["materialized"]
