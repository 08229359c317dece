"""Impact from lineage, on the real CEI asset graph: what a failure halts, degrades and leaves alone.

Dagster's own asset selection (``AssetSelection.downstream``) is the yardstick for "matches the
graph"; the named assets say what a responder relies on (a bad mark stops the P&L, a bad quote
does not).
"""

import dagster as dg
import pytest

from cei_assets.incidents.facts import Failure
from cei_assets.incidents.impact import assess_impact
from cei_assets.incidents.routing import load_routing, severity_for

DAY = "2026-10-01"


@pytest.fixture(scope="module")
def asset_graph():
    from cei_assets.definitions import defs

    return defs.resolve_asset_graph()


def check(asset, name, *, blocking=True, warn=False, **extra) -> Failure:
    return Failure(kind="check", run_id="run-1", partition=DAY, asset_key=asset, check_name=name,
                   blocking=blocking, warn_only=warn, description=f"{name} failed", **extra)


def downstream_in_dagster(asset_graph, *assets) -> set[str]:
    selection = dg.AssetSelection.assets(*[dg.AssetKey.from_user_string(a) for a in assets])
    return {k.to_user_string() for k in selection.downstream(include_self=False).resolve(asset_graph)}


def all_assets(asset_graph) -> set[str]:
    return {k.to_user_string() for k in asset_graph.get_all_asset_keys()}


def test_a_failed_blocking_check_on_eod_prices_halts_everything_downstream_of_it(asset_graph):
    impact = assess_impact([check("landing/eod_prices", "price_move_data_error")], asset_graph)

    assert impact.root_assets == ["landing/eod_prices"]
    assert set(impact.halted) == downstream_in_dagster(asset_graph, "landing/eod_prices")
    assert {"stg_eod_prices", "market_values", "daily_pnl", "recon_market_values", "recon_breaks"} <= set(impact.halted)
    assert impact.degraded == []
    # Positions and cash do not read marks: they are still built for the date.
    assert {"positions", "cash_balances", "landing/quotes", "stg_quotes"} <= set(impact.unaffected)
    assert set(impact.unaffected) | set(impact.halted) | set(impact.root_assets) == all_assets(asset_graph)
    assert impact.criticality == "critical"


def test_the_critical_path_runs_from_the_root_to_the_pnl(asset_graph):
    impact = assess_impact([check("landing/eod_prices", "price_move_data_error")], asset_graph)
    assert impact.critical_path == ["landing/eod_prices", "stg_eod_prices", "market_values", "daily_pnl"]
    for parent, child in zip(impact.critical_path, impact.critical_path[1:]):
        assert dg.AssetKey.from_user_string(parent) in asset_graph.get(dg.AssetKey.from_user_string(child)).parent_keys


def test_owners_teams_and_business_processes_come_from_the_assets(asset_graph):
    impact = assess_impact([check("landing/eod_prices", "price_move_data_error")], asset_graph)
    assert impact.teams[0] == "market-data"  # the root's team first
    assert "fund-operations" in impact.teams  # then the owners of what is halted
    assert impact.owners["landing/eod_prices"] == ["team:market-data"]
    assert impact.owners["daily_pnl"] == ["team:fund-operations"]
    assert set(impact.owners) == {"landing/eod_prices", *impact.halted}
    assert {"EOD valuation", "investor NAV", "risk report", "P&L report"} <= set(impact.business_processes)
    assert "market making" not in impact.business_processes


def test_a_warning_on_quotes_degrades_only_and_halts_nothing(asset_graph):
    impact = assess_impact([check("landing/quotes", "stale_feed", blocking=False, warn=True)], asset_graph)
    assert impact.root_assets == ["landing/quotes"]
    assert impact.halted == []
    assert set(impact.degraded) == downstream_in_dagster(asset_graph, "landing/quotes") == {"stg_quotes"}
    assert impact.criticality == "medium"
    assert impact.critical_path == []  # quotes do not feed the P&L
    assert set(impact.business_processes) == {"market making", "execution analytics"}
    assert severity_for([check("landing/quotes", "stale_feed", blocking=False, warn=True)], impact,
                        load_routing())[0] == "P4"


def test_a_cascade_from_a_bad_mark_has_one_root(asset_graph):
    failures = [
        check("daily_pnl", "soda_failed_rows_total_explained"),
        check("market_values", "soda_failed_rows_positive_marks"),
        check("landing/eod_prices", "positive_close"),
        check("landing/eod_prices", "price_move_data_error"),
    ]
    impact = assess_impact(failures, asset_graph)
    assert impact.root_assets == ["landing/eod_prices"]
    assert {"market_values", "daily_pnl"} <= set(impact.halted)
    assert set(impact.halted) == downstream_in_dagster(asset_graph, "landing/eod_prices")


def test_blocking_and_warning_failures_together_halt_and_degrade_separately(asset_graph):
    impact = assess_impact([
        check("landing/eod_prices", "price_move_data_error"),
        check("landing/quotes", "crossed_quotes", blocking=False, warn=True),
    ], asset_graph)
    assert impact.root_assets == ["landing/eod_prices", "landing/quotes"]
    assert "daily_pnl" in impact.halted and impact.degraded == ["stg_quotes"]
    assert not set(impact.halted) & set(impact.degraded)


def test_a_warning_downstream_of_a_halt_is_not_called_degraded(asset_graph):
    impact = assess_impact([
        check("landing/eod_prices", "price_move_data_error"),
        check("daily_pnl", "soda_row_count", blocking=False, warn=True),
    ], asset_graph)
    assert "daily_pnl" in impact.halted and "daily_pnl" not in impact.degraded


def test_a_step_error_halts_the_steps_assets_and_everything_below(asset_graph):
    # The assets of the dbt step: the staging views and the books (dbt's own groups).
    dbt_models = sorted(a for a in all_assets(asset_graph)
                        if asset_graph.get(dg.AssetKey.from_user_string(a)).group_name in ("staging", "books"))
    step_error = Failure(
        kind="step_error", run_id="run-2", partition=DAY, asset_key=dbt_models[0], check_name=None,
        blocking=True, warn_only=False, description="step books_dbt_assets failed: dbt exited with code 2",
        metadata={"assets": dbt_models, "error_class": "DagsterDbtCliRuntimeError"}, step_key="books_dbt_assets",
    )
    impact = assess_impact([step_error], asset_graph)
    assert impact.root_assets and all(a.startswith("stg_") for a in impact.root_assets)
    assert set(impact.root_assets) | set(impact.halted) == set(dbt_models)
    assert "daily_pnl" in impact.halted
    assert impact.critical_path[-1] == "daily_pnl"
    assert all(a.startswith("landing/") or a == "data_quality_scorecard" for a in impact.unaffected)


def test_a_run_that_failed_without_assets_has_an_unknown_impact_and_routes_as_critical(asset_graph):
    run_failure = Failure(kind="run_failure", run_id="run-3", partition=DAY, asset_key=None, check_name=None,
                          blocking=True, warn_only=False, description="run run-3 (daily_books) failed: killed")
    impact = assess_impact([run_failure], asset_graph)
    assert impact.root_assets == [] and impact.halted == []
    severity, why = severity_for([run_failure], impact, load_routing())
    assert severity == "P1" and "unknown" in why


def test_a_run_failure_takes_the_assets_the_run_had_planned(asset_graph):
    run_failure = Failure(kind="run_failure", run_id="run-4", partition=DAY, asset_key=None, check_name=None,
                          blocking=True, warn_only=False, description="run run-4 failed")
    impact = assess_impact([run_failure], asset_graph, run_assets={"run-4": ["landing/fx_rates", "stg_fx_rates"]})
    assert impact.root_assets == ["landing/fx_rates"]
    assert "stg_fx_rates" in impact.halted and "daily_pnl" in impact.halted


def test_an_asset_no_longer_in_the_graph_is_a_root_without_downstream(asset_graph):
    impact = assess_impact([check("landing/retired_feed", "landing_file")], asset_graph)
    assert impact.root_assets == ["landing/retired_feed"]
    assert impact.halted == [] and impact.critical_path == [] and impact.teams == []
