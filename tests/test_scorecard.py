"""The data-quality scorecard: a daily asset whose numeric metadata the Dagster UI plots.

Real Dagster instance, real incident store, real DuckDB warehouse; the figures are checked
against what was put there.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from scorecard_location import defs, execute_in_location, run_daily, write_breaks

from cei_assets.incidents.facts import Failure
from cei_assets.incidents.store import IncidentStore, SourcedFailure
from cei_assets.scorecard import activity_window, compute_scorecard
from cei_assets.trading_calendar import is_trading_day, previous_trading_day

NEW_YORK = ZoneInfo("America/New_York")
DAY = "2026-10-01"  # a Thursday
SCORECARD = dg.AssetKey("data_quality_scorecard")


@pytest.fixture
def warehouse(cei_home, monkeypatch):
    monkeypatch.setenv("CEI_WAREHOUSE", str(cei_home / "warehouse.duckdb"))
    return cei_home / "warehouse.duckdb"


@pytest.fixture
def instance(cei_home, warehouse):
    (cei_home / "dagster").mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(cei_home / "dagster")) as instance:
        yield instance


def add_incident(store, *, opened_at, severity, team, run_id="run-elsewhere", detected_after=120.0,
                 resolved_after=None, check="prices_positive"):
    failure = Failure(kind="check", run_id=run_id, partition=DAY, asset_key="eod_prices", check_name=check,
                      blocking=True, warn_only=False, description=f"{check} failed", metadata={},
                      evaluated_at=opened_at - detected_after)
    incident_id = store.open_incident([SourcedFailure(failure, f"check:{run_id}:{opened_at}")], now=opened_at)
    store.set_content(incident_id, title=f"{check} failed", signature=check, severity=severity, team=team,
                      impact=None, routing=None, similar=None, report=None)
    if resolved_after is not None:
        store.resolve(incident_id, "ana.lima", "reloaded", now=opened_at + resolved_after)
    return incident_id


def latest_scorecard(instance, day: str):
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SCORECARD, asset_partitions=[day]), limit=1).records
    return record.asset_materialization.metadata


def test_the_scorecard_materializes_with_numeric_metadata_the_ui_plots(cei_home, instance, warehouse):
    run_daily(instance, DAY, "stale")  # 3 checks run, the freshness warning fails
    store = IncidentStore(f"sqlite:///{cei_home / 'incidents.db'}")
    start, end = activity_window(dt.date.fromisoformat(DAY))
    add_incident(store, opened_at=start + 19 * 3600, severity="P1", team="market-data", detected_after=180)
    add_incident(store, opened_at=start + 10 * 3600, severity="P3", team="fund-operations", detected_after=60,
                 resolved_after=3600, check="prices_fresh")
    add_incident(store, opened_at=start - 86400, severity="P2", team="market-data")  # the day before, still open
    write_breaks(warehouse, DAY, [("ACC-US", True, 100.0), ("ACC-EU", True, -50.0), ("ACC-US", False, None)])

    # As its schedule runs it: the daily_scorecard job, launched from the code location.
    result = execute_in_location("daily_scorecard", instance, tags={"dagster/partition": DAY})

    assert result.success
    meta = latest_scorecard(instance, DAY)
    numbers = {k: v.value for k, v in meta.items() if isinstance(v, (dg.IntMetadataValue, dg.FloatMetadataValue))}
    assert numbers == {
        "checks_run": 3, "checks_failed": 1, "blocking_checks_failed": 0, "warnings": 1,
        "checks_passing_pct": 66.67,
        "data_quality_score": 85.71,  # 100 x (3 + 3) / (3 + 3 + 1): the warning weighs 1, blocking checks 3
        "incidents_opened": 2, "incidents_resolved": 1,
        "open_incidents": 2, "open_incidents_p1": 1, "open_incidents_p2": 1, "open_incidents_p3": 0,
        "open_incidents_p4": 0,
        "mttd_minutes": 2.0,  # (3 min + 1 min) / 2, from the failures' evaluation (no run record)
        "mttr_minutes": 60.0,
        "breaks": 3, "pnl_breaks": 2,
        "break_value_usd": 155.0,  # 100 USD + 50 EUR at 1.10
        "pnl_break_total_usd": 45.0,  # 100 - 55
        "analyst_hours_saved": round((3 * 2 + 3 * 15 + 2 * 30) / 60, 2),
    }
    assert "analyst_hours_saved = (checks run × 2 min + breaks × 15 min + incidents opened × 30 min) / 60" in \
        meta["formulas"].value


def test_a_date_without_reconciliation_leaves_the_break_figures_out_rather_than_zero(instance):
    run_daily(instance, DAY, "bad_prices")  # market values are not built: their check does not run

    assert execute_in_location("daily_scorecard", instance, tags={"dagster/partition": DAY}).success

    meta = latest_scorecard(instance, DAY)
    assert meta["checks_run"].value == 2 and meta["blocking_checks_failed"].value == 1
    assert meta["data_quality_score"].value == 25.0  # the warning passed (1) of 3 + 1
    assert "breaks" not in meta and "break_value_usd" not in meta and "mttr_minutes" not in meta
    assert "No reconciliation of this date in the warehouse" in meta["formulas"].value


def test_time_to_detect_runs_from_the_start_of_the_run_that_revealed_the_failure(cei_home, instance):
    run_id = run_daily(instance, DAY, "bad_prices")
    started = instance.get_run_record_by_id(run_id).start_time
    today = dt.datetime.fromtimestamp(started + 90, NEW_YORK).date()
    day = today if is_trading_day(today) else previous_trading_day(today)  # the date whose window holds it
    store = IncidentStore(f"sqlite:///{cei_home / 'incidents.db'}")
    add_incident(store, opened_at=started + 90, severity="P1", team="market-data", run_id=run_id,
                 detected_after=1.0)

    card = compute_scorecard(day, instance=instance, asset_graph=defs.resolve_asset_graph(), store=store,
                             now=started + 3600)

    assert card.incidents_opened == 1
    assert card.mttd_minutes == 1.5  # 90 s after the run started, whatever the sensor's own lag


def test_materialized_apart_from_its_code_location_it_refuses_rather_than_count_a_fraction(instance):
    run_daily(instance, DAY)

    result = dg.materialize([*defs.assets], selection=[SCORECARD], partition_key=DAY, instance=instance,
                            resources=defs.resources, raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "count the checks of their whole code location" in str(failure.step_failure_data.error)


def test_the_scorecard_has_its_own_job_the_morning_after_not_the_daily_books_run(cei_home):
    from cei_assets.assets.scorecard import data_quality_scorecard_schedule
    from cei_assets.definitions import defs

    daily = defs.resolve_job_def("daily_books")
    assert SCORECARD not in daily.asset_layer.selected_asset_keys
    assert defs.resolve_job_def("daily_scorecard").asset_layer.selected_asset_keys == {SCORECARD}
    friday = data_quality_scorecard_schedule(dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 10, 5, 6, 50, tzinfo=NEW_YORK)))
    assert friday.partition_key == "2026-10-02"  # Monday morning: Friday's scorecard
    holiday = data_quality_scorecard_schedule(dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 26, 6, 50, tzinfo=NEW_YORK)))
    assert isinstance(holiday, dg.SkipReason)
