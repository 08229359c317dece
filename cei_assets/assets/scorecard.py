"""The data-quality scorecard as a daily asset: its numeric metadata is what the UI plots.

It reads the Dagster instance (check results), the incident store and the warehouse's
reconciliation; it builds nothing the books read. So it is not part of the ``daily_books``
job: in that job it would run in the middle of the run whose checks it counts (it has no
upstream assets to wait for) and, downstream of the books, Dagster would skip it on exactly
the days a blocking check fails. It has its own job and schedule, the morning after the
trading date (06:50 New York, before the 07:00 digest); the digest computes the same figures
with the same function (``cei_assets.scorecard.compute_scorecard``).
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from cei_assets.incidents.store import IncidentStoreResource
from cei_assets.scorecard import asset_graph_of, compute_scorecard
from cei_assets.trading_calendar import is_trading_day, previous_trading_day, trading_day_partitions
from cei_assets.warehouse import WarehouseResource

SCORECARD_ASSET = "data_quality_scorecard"
SCORECARD_JOB = "daily_scorecard"


@dg.asset(
    name=SCORECARD_ASSET,
    partitions_def=trading_day_partitions(),
    group_name="data_quality",
    owners=["team:fund-operations"],
    kinds={"python"},
    metadata={"cei/business_processes": ["data-quality reporting"], "cei/criticality": "low"},
    description=(
        "How the trading date went for data quality: share of checks passing, data-quality score, "
        "open incidents by severity, mean time to detect and to resolve, reconciliation breaks and "
        "their value, analyst hours saved (formulas in docs/notifications.md)."
    ),
)
def data_quality_scorecard(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, incidents: IncidentStoreResource
) -> dg.MaterializeResult:
    day = dt.date.fromisoformat(context.partition_key)
    card = compute_scorecard(
        day,
        instance=context.instance,
        asset_graph=asset_graph_of(context),
        store=incidents.store(),
        warehouse=warehouse,
    )
    context.log.info(
        f"{day}: {card.checks_run} checks run, {card.checks_failed} failed, "
        f"{card.incidents_opened} incident(s) opened, {card.breaks if card.breaks is not None else 'no'} break(s)"
    )
    return dg.MaterializeResult(metadata=card.metadata())


data_quality_scorecard_job = dg.define_asset_job(
    SCORECARD_JOB,
    selection=dg.AssetSelection.assets(SCORECARD_ASSET),
    partitions_def=trading_day_partitions(),
    executor_def=dg.in_process_executor,
    description="The data-quality scorecard of one trading date.",
)


@dg.schedule(
    job=data_quality_scorecard_job,
    cron_schedule="50 6 * * 1-5",
    execution_timezone="America/New_York",
    description="The scorecard of the previous trading date, each trading morning (06:50 New York).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def data_quality_scorecard_schedule(context: dg.ScheduleEvaluationContext):
    today = context.scheduled_execution_time.astimezone(ZoneInfo("America/New_York")).date()
    if not is_trading_day(today):
        return dg.SkipReason(f"{today} is not a trading day")
    day = previous_trading_day(today)
    return dg.RunRequest(run_key=f"scorecard-{day.isoformat()}", partition_key=day.isoformat())
