"""One lineage graph: landing files -> staging -> the books -> P&L, each asset with an owner."""

import dagster as dg
import pytest


@pytest.fixture(scope="module")
def asset_graph():
    from cei_assets.definitions import defs

    return defs.resolve_asset_graph()


def _upstream_closure(asset_graph, key):
    seen, todo = set(), [key]
    while todo:
        for parent in asset_graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_pnl_descends_from_the_landing_files_through_staging_and_the_books(asset_graph):
    upstream = {k.to_user_string() for k in _upstream_closure(asset_graph, dg.AssetKey("daily_pnl"))}
    for expected in ("positions", "market_values", "fx_rates_usd", "stg_executions", "stg_eod_prices",
                     "landing/executions", "landing/eod_prices", "landing/fx_rates", "landing/corporate_actions",
                     "landing/opening_positions", "landing/securities", "landing/accounts"):
        assert expected in upstream


def test_dbt_sources_are_the_landing_assets_not_separate_nodes(asset_graph):
    parents = {k.to_user_string() for k in asset_graph.get(dg.AssetKey("stg_quotes")).parent_keys}
    assert parents == {"landing/quotes"}


def test_every_asset_has_an_owning_team(asset_graph):
    for key in asset_graph.materializable_asset_keys:
        owners = asset_graph.get(key).owners
        assert owners and all(o.startswith("team:") for o in owners), key


def test_daily_tables_are_partitioned_by_trading_date(asset_graph):
    for name in ("landing/quotes", "landing/executions", "positions", "daily_pnl"):
        partitions = asset_graph.get(dg.AssetKey.from_user_string(name)).partitions_def
        assert partitions is not None and "2025-11-27" not in partitions.get_partition_keys()


def test_every_landing_asset_carries_a_blocking_file_check(asset_graph):
    landing = [k for k in asset_graph.materializable_asset_keys if k.path[0] == "landing"]
    assert len(landing) == 15
    for key in landing:
        check = asset_graph.get_check_spec(dg.AssetCheckKey(key, "landing_file"))
        assert check.blocking


def test_the_code_location_loads_in_dagsters_own_tooling(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "CEI_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful for code location cei" in result.stdout + result.stderr
