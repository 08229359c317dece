"""One asset per landing dataset: the feeds' files loaded into the warehouse's ``raw`` schema.

Daily datasets are partitioned by trading date; reference data and the opening books are not
(one snapshot per landing root) and are reloaded with every daily run, which costs little and
keeps them current. Each asset carries a blocking ``landing_file`` check: a missing file, a
missing required column or a value that does not parse fails it with the file, the column and
the lines, and nothing downstream of that asset runs for the partition.

Reading a file can also fail for a moment (a network share that hiccups, a warehouse another
process holds too long). Those transient errors, and only those, are retried with exponential
backoff and jitter; when the last attempt still fails, the file's check fails with the error.
A missing or malformed file is not transient: its check fails on the first attempt.
"""


import datetime as dt
import os

import dagster as dg

from cei_assets.check_specs import check_spec

from cei_assets import ownership
from cei_assets.ingestion import IngestResult, LandingProblem, is_transient_io_error, load_dataset, raw_table
from cei_assets.landing import ALL_DATASETS, QUOTES, LandingDataset
from cei_assets.resources import LandingZoneResource, WarehouseResource
from cei_assets.trading_calendar import trading_day_partitions
from cei_assets.warehouse import WarehouseLockTimeout

LANDING_FILE_CHECK = "landing_file"


def _env_number(name: str, default: str, kind: type, minimum: float):
    text = os.environ.get(name, "").strip() or default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        unit = "a whole number" if kind is int else "a number of seconds"
        raise ValueError(f"{name} must be {unit} of at least {minimum}, not {text!r}")
    return value


def landing_retry_policy() -> dg.RetryPolicy:
    """Retries of the landing steps: ``CEI_LANDING_MAX_RETRIES`` (default 3) more attempts,
    the first after about ``CEI_LANDING_RETRY_DELAY`` seconds (default 2), each later wait
    doubling (exponential backoff), every wait moved randomly by up to its own length (jitter)
    so that steps failing together do not retry together."""
    return dg.RetryPolicy(
        max_retries=_env_number("CEI_LANDING_MAX_RETRIES", "3", int, minimum=0),
        delay=_env_number("CEI_LANDING_RETRY_DELAY", "2", float, minimum=0),
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def is_transient(error: BaseException) -> bool:
    """Errors worth another attempt: transient I/O (see ``ingestion.TRANSIENT_ERRNOS``) and a
    warehouse another process held too long. Everything else is a fact about the data, the
    configuration or the code, and another attempt would only delay the same failure."""
    return is_transient_io_error(error) or isinstance(error, WarehouseLockTimeout)


def landing_asset_key(dataset: LandingDataset) -> dg.AssetKey:
    return dg.AssetKey(["landing", dataset.name])


def build_landing_asset(dataset: LandingDataset, retry_policy: dg.RetryPolicy | None = None) -> dg.AssetsDefinition:
    """The dataset's asset; its retry policy is ``landing_retry_policy()`` unless given."""
    retry_policy = retry_policy or landing_retry_policy()
    key = landing_asset_key(dataset)
    partitions_def = trading_day_partitions() if dataset.daily else None
    where = f"<landing>/<date>/{dataset.path}" if dataset.daily else f"<landing>/{dataset.path}"

    @dg.asset(
        key=key,
        group_name="landing",
        description=f"{dataset.description}\n\nLoaded from `{where}` into `{raw_table(dataset)}`.",
        partitions_def=partitions_def,
        owners=[ownership.owner_of(dataset.name)],
        metadata={**ownership.metadata_of(dataset.name), "cei/landing_path": where},
        kinds={"csv", "duckdb"},
        check_specs=[
            check_spec(
                LANDING_FILE_CHECK,
                asset=key,
                blocking=True,
                partitions_def=partitions_def,  # results are recorded per trading date
                description=(
                    "The landing file is present, has every required column and every value parses. "
                    "Blocking: an unreadable file would make the books wrong."
                ),
            )
        ],
        # When the file is unusable the asset is not materialized: only the failed check is
        # recorded, so nothing downstream can mistake a partial load for the day's data.
        output_required=False,
        retry_policy=retry_policy,
    )
    def _landing_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource, landing: LandingZoneResource):
        business_date = dt.date.fromisoformat(context.partition_key) if dataset.daily else None
        try:
            with warehouse.write() as conn:
                result = load_dataset(conn, dataset, landing.path, business_date)
        except Exception as error:
            if not is_transient(error):
                # Not worth another attempt: fail now, past the retry policy.
                raise dg.Failure(
                    description=f"loading {dataset.name} failed: {type(error).__name__}: {error}",
                    allow_retries=False,
                ) from error
            attempt = context.retry_number + 1
            if context.retry_number < retry_policy.max_retries:
                context.log.warning(f"{dataset.name}: transient error on attempt {attempt}, retrying: {error}")
                raise  # the retry policy waits, with backoff and jitter, and tries again
            shown = getattr(error, "filename", None) or where
            result = IngestResult(dataset.name, [], 0, [LandingProblem(
                str(shown), "unreadable_file",
                f"{shown} could not be loaded after {attempt} attempt(s); the last failed with: {error}",
            )], 0.0)

        check_metadata = {
            "files": result.files,
            "rows": result.rows,
            "problems": [p.as_metadata() for p in result.problems],
        }
        if result.ok:
            metadata = {
                "dagster/row_count": result.rows,
                "files": dg.MetadataValue.json(result.files),
                "table": raw_table(dataset),
                "load_seconds": round(result.seconds, 3),
            }
            if dataset is QUOTES:
                metadata["rows_by_vendor"] = dg.MetadataValue.json(result.rows_by_vendor)
            context.log.info(f"{dataset.name}: {result.summary()} in {result.seconds:.2f}s")
            yield dg.MaterializeResult(metadata=metadata)
            yield dg.AssetCheckResult(
                check_name=LANDING_FILE_CHECK,
                passed=True,
                description=f"{result.summary()}; every required column present and every value parsed.",
                metadata=check_metadata,
            )
        else:
            for problem in result.problems:
                context.log.error(problem.message)
            yield dg.AssetCheckResult(
                check_name=LANDING_FILE_CHECK,
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description=result.summary(),
                metadata=check_metadata,
            )

    return _landing_asset


_retry_policy = landing_retry_policy()
landing_assets = [build_landing_asset(dataset, _retry_policy) for dataset in ALL_DATASETS]
