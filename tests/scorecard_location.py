"""A small code location for the scorecard and digest tests, on CEI's trading-date partitions.

    eod_prices (market-data) --> market_values (fund-operations)      data_quality_scorecard

Checks: ``prices_positive`` (blocking) and ``prices_fresh`` (warning) on eod_prices,
``values_consistent`` (blocking) on market_values. A run's ``test/fault`` tag picks what goes
wrong: ``bad_prices`` fails the blocking price check (market values are then not built),
``stale`` makes the freshness check warn. The real scorecard asset, digest job and schedule
are registered with the real resources, pointed at the test's CEI_HOME.
"""

from pathlib import Path

import dagster as dg
import duckdb

from cei_assets.assets.scorecard import data_quality_scorecard, data_quality_scorecard_job
from cei_assets.incidents.store import IncidentStoreResource
from cei_assets.notifications.digest import daily_digest_job, daily_digest_schedule
from cei_assets.trading_calendar import trading_day_partitions
from cei_assets.warehouse import WarehouseResource

FAULT_TAG = "test/fault"
FAILING_ROWS = [
    {"symbol": "NVDA", "price": 0.0, "vendor": "BLOOMBERG", "file": "eod_prices.csv", "line": 4},
    {"symbol": "ORCL", "price": -1.5, "vendor": "BLOOMBERG", "file": "eod_prices.csv", "line": 9},
]


def _faults(context) -> set[str]:
    return {f.strip() for f in context.run.tags.get(FAULT_TAG, "").split(",") if f.strip()}


@dg.asset(
    partitions_def=trading_day_partitions(),
    owners=["team:market-data"],
    check_specs=[
        dg.AssetCheckSpec("prices_positive", asset="eod_prices", blocking=True, description="marks are positive"),
        dg.AssetCheckSpec("prices_fresh", asset="eod_prices", blocking=False, description="marks are today's"),
    ],
)
def eod_prices(context: dg.AssetExecutionContext):
    yield dg.Output(None)
    bad = "bad_prices" in _faults(context)
    yield dg.AssetCheckResult(
        check_name="prices_positive", passed=not bad,
        description="2 of 16 EOD marks are zero or negative; symbols: NVDA, ORCL" if bad else None,
        metadata={"failing_count": 2, "sample_failing_rows": FAILING_ROWS} if bad else {"failing_count": 0},
    )
    stale = "stale" in _faults(context)
    yield dg.AssetCheckResult(check_name="prices_fresh", passed=not stale, severity=dg.AssetCheckSeverity.WARN,
                              description="3 marks are from the day before" if stale else None)


@dg.asset(partitions_def=trading_day_partitions(), owners=["team:fund-operations"], deps=[eod_prices],
          check_specs=[dg.AssetCheckSpec("values_consistent", asset="market_values", blocking=True)])
def market_values(context: dg.AssetExecutionContext):
    yield dg.Output(None)
    yield dg.AssetCheckResult(check_name="values_consistent", passed=True)


daily = dg.define_asset_job("daily", selection=dg.AssetSelection.assets(eod_prices, market_values),
                            partitions_def=trading_day_partitions(), executor_def=dg.in_process_executor)


# Resources resolved when a run starts, from the test's environment (CEI_HOME, CEI_WAREHOUSE),
# as in CEI's own location: a location loaded once per process serves every test.
defs = dg.Definitions(
    assets=[eod_prices, market_values, data_quality_scorecard],
    jobs=[daily, data_quality_scorecard_job, daily_digest_job],
    schedules=[daily_digest_schedule],
    resources={
        "warehouse": WarehouseResource(path=dg.EnvVar("CEI_WAREHOUSE")),
        "incidents": IncidentStoreResource(),  # CEI_INCIDENTS_URL, else $CEI_HOME/incidents.db
    },
)


def run_daily(instance: dg.DagsterInstance, day: str, *faults: str) -> str:
    result = defs.resolve_job_def("daily").execute_in_process(
        instance=instance, partition_key=day, raise_on_error=False, tags={FAULT_TAG: ",".join(faults)})
    return result.run_id


def write_breaks(warehouse: Path, day: str, breaks: list[tuple]) -> None:
    """``reconciliation.recon_breaks`` rows of ``day`` (account, explains_pnl, impact_base), with the
    accounts' base currencies (recon_pnl) and the date's USD rates (books.fx_rates_usd), as the
    dbt models leave them. Accounts: ACC-US (USD), ACC-EU (EUR at 1.10 USD)."""
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS reconciliation")
        conn.execute("CREATE SCHEMA IF NOT EXISTS books")
        conn.execute("""CREATE TABLE IF NOT EXISTS reconciliation.recon_breaks (
            business_date DATE, family VARCHAR, rule VARCHAR, category VARCHAR, blocking BOOLEAN,
            account VARCHAR, symbol VARCHAR, currency VARCHAR, reference VARCHAR, firm_value VARCHAR,
            broker_value VARCHAR, difference DOUBLE, impact_base DOUBLE, explains_pnl BOOLEAN,
            description VARCHAR)""")
        conn.execute("""CREATE TABLE IF NOT EXISTS reconciliation.recon_pnl (
            business_date DATE, account VARCHAR, base_currency VARCHAR, books_pnl_base DOUBLE,
            broker_pnl_base DOUBLE)""")
        conn.execute("CREATE TABLE IF NOT EXISTS books.fx_rates_usd (business_date DATE, currency VARCHAR, "
                     "usd_per_unit DOUBLE)")
        for account, base in (("ACC-US", "USD"), ("ACC-EU", "EUR")):
            conn.execute("INSERT INTO reconciliation.recon_pnl VALUES (?, ?, ?, 0, 0)", [day, account, base])
        conn.execute("INSERT INTO books.fx_rates_usd VALUES (?, 'USD', 1.0), (?, 'EUR', 1.10)", [day, day])
        for n, (account, explains, impact) in enumerate(breaks):
            conn.execute(
                "INSERT INTO reconciliation.recon_breaks VALUES (?, 'positions', 'position_quantity', 'quantity', "
                "false, ?, 'NVDA', 'USD', ?, '10', '9', 1, ?, ?, 'position break')",
                [day, account, f"ref-{n}", impact, explains])


def execute_in_location(job_name: str, instance: dg.DagsterInstance, **kwargs):
    """Run a job as the daemon would: reconstructed from the code location, so the run knows its
    repository (``context.repository_def``) like every run launched in a deployment."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repository = ReconstructableRepository.for_file(__file__, "defs")
    return dg.execute_job(repository.get_reconstructable_job(job_name), instance=instance, **kwargs)
