"""One asset per landing dataset: the feeds' files loaded into the warehouse's ``raw`` schema.

Daily datasets are partitioned by trading date; reference data and the opening books are not
(one snapshot per landing root) and are reloaded with every daily run, which costs little and
keeps them current. Each asset carries a blocking ``landing_file`` check: a missing file, a
missing required column or a value that does not parse fails it with the file, the column and
the lines, and nothing downstream of that asset runs for the partition.
"""


import datetime as dt

import dagster as dg

from cei_assets.check_specs import check_spec

from cei_assets import ownership
from cei_assets.ingestion import load_dataset, raw_table
from cei_assets.landing import ALL_DATASETS, QUOTES, LandingDataset
from cei_assets.resources import LandingZoneResource, WarehouseResource
from cei_assets.trading_calendar import trading_day_partitions

LANDING_FILE_CHECK = "landing_file"


def landing_asset_key(dataset: LandingDataset) -> dg.AssetKey:
    return dg.AssetKey(["landing", dataset.name])


def _build_landing_asset(dataset: LandingDataset) -> dg.AssetsDefinition:
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
    )
    def _landing_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource, landing: LandingZoneResource):
        business_date = dt.date.fromisoformat(context.partition_key) if dataset.daily else None
        with warehouse.write() as conn:
            result = load_dataset(conn, dataset, landing.path, business_date)

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


landing_assets = [_build_landing_asset(dataset) for dataset in ALL_DATASETS]
