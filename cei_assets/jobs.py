"""Jobs and schedules: the daily graph after the close, and intraday market data."""


import datetime as dt

import dagster as dg

from cei_assets import settings
from cei_assets.trading_calendar import is_trading_day, trading_day_partitions

DAILY_JOB = "daily_books"
INTRADAY_JOB = "intraday_market_data"


def daily_executor() -> dg.ExecutorDefinition:
    """The executor of the daily graph, chosen on purpose (``CEI_EXECUTOR``).

    The graph has a few dozen short steps that all write one DuckDB file. Dagster's default
    multiprocess executor starts a process per step (about 1.5 s each here) and the steps would
    only queue on the warehouse lock anyway, so the default is in-process: measured here, a
    daily run takes a fraction of the multiprocess time. ``multiprocess`` remains available
    and safe (the warehouse lock serialises writers); its step processes fork from a server that
    has already imported the code location, which roughly halves the start-up of each step.

    ``celery`` sends every step to Celery workers (dagster-celery) on the broker
    ``CEI_CELERY_BROKER`` with results on ``CEI_CELERY_BACKEND`` (defaults: the local RabbitMQ,
    ``rpc://``). Both are read from the environment when the run starts, so a broker password
    stays out of the job's definition and its run config. Celery needs an instance every worker
    can reach: the production profile (PostgreSQL).
    """
    choice = settings.executor()
    if choice == "multiprocess":
        return dg.multiprocess_executor.configured(
            {"start_method": {"forkserver": {"preload_modules": ["cei_assets.definitions"]}}},
            name="multiprocess",
        )
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {"broker": {"env": "CEI_CELERY_BROKER"}, "backend": {"env": "CEI_CELERY_BACKEND"},
             # The workers of bin/cei-services consume the same queue (-Q).
             "config_source": {"task_default_queue": settings.celery_queue()}},
            name="celery",
        )
    raise AssertionError(choice)  # settings.executor() admits only the three above


daily_books_job = dg.define_asset_job(
    DAILY_JOB,
    # Not the scorecard: it reads this run's check results, and has its own job (assets/scorecard.py).
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("data_quality_scorecard"),
    partitions_def=trading_day_partitions(),
    executor_def=daily_executor(),
    description="Every table of one trading date: landing files, staging, the books and P&L.",
)

intraday_market_data_job = dg.define_asset_job(
    INTRADAY_JOB,
    selection=dg.AssetSelection.assets(["landing", "quotes"]),
    partitions_def=trading_day_partitions(),
    executor_def=dg.in_process_executor,
    description="Reload today's quotes as the vendors' files grow during the session.",
)


def _session_run(context: dg.ScheduleEvaluationContext, job_name: str, suffix: str):
    day = context.scheduled_execution_time.astimezone(dt.timezone.utc).date()
    if not is_trading_day(day):
        return dg.SkipReason(f"{day} is not a trading day")
    return dg.RunRequest(run_key=f"{day.isoformat()}{suffix}", partition_key=day.isoformat(), job_name=job_name)


@dg.schedule(
    job=daily_books_job,
    cron_schedule="30 18 * * 1-5",
    execution_timezone="America/New_York",
    description="The daily books after the US close (18:30 New York), on trading days only.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_books_schedule(context: dg.ScheduleEvaluationContext):
    return _session_run(context, DAILY_JOB, "")


@dg.schedule(
    job=intraday_market_data_job,
    cron_schedule="*/15 9-16 * * 1-5",
    execution_timezone="America/New_York",
    description="Quotes every 15 minutes during the US session, on trading days only.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def intraday_market_data_schedule(context: dg.ScheduleEvaluationContext):
    stamp = context.scheduled_execution_time.strftime("T%H%M")
    return _session_run(context, INTRADAY_JOB, stamp)
