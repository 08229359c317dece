"""The CEI code location: one Definitions, assembled here."""

from cei_assets import settings

settings.configure_environment()

import dagster as dg  # noqa: E402

from asset_checks.dagster_checks import build_rule_checks  # noqa: E402
from asset_checks.pandera_models import build_pandera_checks  # noqa: E402
from asset_checks.soda_checks import build_soda_checks  # noqa: E402
from cei_assets.assets.books import LocalDbtCliResource, books_dbt_assets, dbt_executable, dbt_project  # noqa: E402
from cei_assets.assets.landing import landing_assets  # noqa: E402
from cei_assets.assets.scorecard import (  # noqa: E402
    data_quality_scorecard,
    data_quality_scorecard_job,
    data_quality_scorecard_schedule,
)
from cei_assets.incidents.store import IncidentStoreResource  # noqa: E402
from cei_assets.jobs import (  # noqa: E402
    daily_books_job,
    daily_books_schedule,
    intraday_market_data_job,
    intraday_market_data_schedule,
)
from cei_assets.notifications.digest import daily_digest_job, daily_digest_schedule  # noqa: E402
from cei_assets.resources import LandingZoneResource, WarehouseResource  # noqa: E402
from sensors.check_failures import incident_sensor  # noqa: E402

defs = dg.Definitions(
    assets=[*landing_assets, books_dbt_assets, data_quality_scorecard],
    # One result shape, three engines: SQL rules (rules/*.yaml), pandera at ingest, Soda
    # contracts on the books; dbt tests come with the dbt assets.
    asset_checks=[*build_rule_checks(), *build_pandera_checks(), *build_soda_checks()],
    jobs=[daily_books_job, intraday_market_data_job, data_quality_scorecard_job, daily_digest_job],
    schedules=[
        daily_books_schedule,
        intraday_market_data_schedule,
        data_quality_scorecard_schedule,
        daily_digest_schedule,
    ],
    sensors=[incident_sensor],
    resources={
        # DuckDB at CEI_WAREHOUSE, or PostgreSQL when CEI_WAREHOUSE_URL is set (docs/warehouse.md).
        "warehouse": WarehouseResource(path=dg.EnvVar("CEI_WAREHOUSE"), url=dg.EnvVar("CEI_WAREHOUSE_URL")),
        "landing": LandingZoneResource(root=dg.EnvVar("CEI_LANDING_DIR")),
        # The dbt next to this interpreter: the daemon and webserver may not have the venv on PATH.
        "dbt": LocalDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
        # The incident store: CEI_INCIDENTS_URL, else SQLite next to the Dagster instance.
        "incidents": IncidentStoreResource(),
    },
)
