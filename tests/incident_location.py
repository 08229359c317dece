"""A small code location for the incident tests: a books chain with blocking and warning checks.

    securities --> marks --> market_values --> pnl          quotes (independent)

Daily partitioned (reference data, ``securities``, is not: every run reloads it), owned and described like CEI's own assets. What goes wrong in a run is
chosen by its ``test/fault`` tag (comma-separated for several), so the same definitions serve
runs in this process and runs launched elsewhere:

- ``bad_securities`` the blocking check on the (unpartitioned) securities fails
- ``bad_marks``    the blocking check on marks fails (market values and P&L are halted)
- ``bad_values``   the blocking check on market values fails
- ``warn``         the P&L check warns (non-blocking, severity WARN)
- ``stale_quotes`` the quotes check warns
- ``boom``         the market-values step raises (a step error, no check involved)
- ``crash_check``  the market-values check raises before deciding (a crashed check)
- ``slow``         the P&L check waits until the file named by ``test/release`` exists, then fails
"""

import os
import time
from pathlib import Path

import dagster as dg

from sensors.check_failures import incident_sensor
from cei_assets.incidents.store import IncidentStoreResource

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01")
FAULT_TAG = "test/fault"
RELEASE_TAG = "test/release"


def _faults(context) -> set[str]:
    return {f.strip() for f in context.run.tags.get(FAULT_TAG, "").split(",") if f.strip()}


def _owned(team: str, processes: list[str], criticality: str) -> dict:
    return {"owners": [team], "metadata": {"cei/business_processes": processes, "cei/criticality": criticality}}


@dg.asset(
    check_specs=[dg.AssetCheckSpec("securities_complete", asset="securities", blocking=True,
                                   description="every traded security has reference data")],
    **_owned("team:reference-data", ["EOD valuation", "trade capture"], "high"),
)
def securities(context: dg.AssetExecutionContext):
    yield dg.Output(None)
    bad = "bad_securities" in _faults(context)
    yield dg.AssetCheckResult(check_name="securities_complete", passed=not bad,
                              description="2 traded securities have no reference data" if bad else None)


@dg.asset(
    partitions_def=PARTITIONS,
    deps=[securities],
    check_specs=[dg.AssetCheckSpec("marks_positive", asset="marks", blocking=True,
                                   description="every EOD mark is a positive price")],
    **_owned("team:market-data", ["EOD valuation", "investor NAV"], "critical"),
)
def marks(context: dg.AssetExecutionContext):
    yield dg.Output(None)
    bad = "bad_marks" in _faults(context)
    yield dg.AssetCheckResult(
        check_name="marks_positive",
        passed=not bad,
        description="3 of 16 marks are zero or negative; symbols: NVDA, ORCL, YHOO" if bad else None,
        metadata={"failing_rows": 3 if bad else 0},
    )


@dg.asset(partitions_def=PARTITIONS, deps=[marks], **_owned("team:fund-operations", ["risk report", "investor NAV"], "critical"))
def market_values(context: dg.AssetExecutionContext) -> None:
    if "boom" in _faults(context):
        raise RuntimeError("market values: division by zero in FX conversion")


@dg.asset_check(asset=market_values, blocking=True, description="market value = quantity x mark")
def values_consistent(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    faults = _faults(context)
    if "crash_check" in faults:
        raise RuntimeError("check query failed: table books.market_values is locked")
    bad = "bad_values" in faults
    return dg.AssetCheckResult(passed=not bad, description="2 positions valued at the wrong mark" if bad else None)


@dg.asset(partitions_def=PARTITIONS, deps=[market_values], **_owned("team:fund-operations", ["P&L report"], "critical"))
def pnl(context: dg.AssetExecutionContext) -> None:
    pass


@dg.asset_check(asset=pnl, blocking=False, description="P&L moves less than 5 sigma")
def pnl_reasonable(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    faults = _faults(context)
    if "slow" in faults:
        release = Path(context.run.tags[RELEASE_TAG])
        while not release.exists():
            time.sleep(0.05)
        return dg.AssetCheckResult(passed=False, description="P&L moved 7.2 sigma")
    warned = "warn" in faults
    return dg.AssetCheckResult(
        passed=not warned,
        severity=dg.AssetCheckSeverity.WARN,
        description="P&L moved 6.1 sigma on ACC-000123" if warned else None,
    )


@dg.asset(partitions_def=PARTITIONS, **_owned("team:market-data", ["market making"], "medium"))
def quotes(context: dg.AssetExecutionContext) -> None:
    pass


@dg.asset_check(asset=quotes, blocking=False, description="quotes arrive within 5 minutes")
def quotes_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    stale = "stale_quotes" in _faults(context)
    return dg.AssetCheckResult(passed=not stale, severity=dg.AssetCheckSeverity.WARN,
                               description="quotes are 42 minutes old" if stale else None)


daily = dg.define_asset_job("daily", partitions_def=PARTITIONS, executor_def=dg.in_process_executor)

defs = dg.Definitions(
    assets=[securities, marks, market_values, pnl, quotes],
    asset_checks=[values_consistent, pnl_reasonable, quotes_fresh],
    jobs=[daily],
    sensors=[incident_sensor],
    # The store's URL from CEI_INCIDENTS_URL (or CEI_HOME), as in the real code location.
    resources={"incidents": IncidentStoreResource(settle_seconds=float(os.environ.get("CEI_TEST_SETTLE_SECONDS", "0")))},
)


def daily_job() -> dg.JobDefinition:
    """Module level, so ``dg.reconstructable`` can rebuild it in a run worker."""
    return defs.resolve_job_def("daily")
