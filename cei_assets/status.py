"""What the Dagster instance knows about one trading date: assets materialized, check results.

Read from the instance (not from the warehouse) so the command line shows exactly what the
Dagster UI shows.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus


def jsonable(value: Any) -> Any:
    """Dagster metadata as plain JSON values."""
    if isinstance(value, dg.MetadataValue):
        value = value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "to_user_string"):
        return value.to_user_string()
    return str(value)


def _is_partitioned(asset_graph, key: dg.AssetKey) -> bool:
    return asset_graph.get(key).partitions_def is not None


def asset_status(instance: dg.DagsterInstance, asset_graph, business_date: dt.date) -> list[dict]:
    rows = []
    for key in sorted(asset_graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        partitioned = _is_partitioned(asset_graph, key)
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[business_date.isoformat()] if partitioned else None),
            limit=1,
        ).records
        rows.append({"key": key.to_user_string(), "materialized": bool(records)})
    return rows


def latest_check_execution(instance: dg.DagsterInstance, asset_graph, check_key: dg.AssetCheckKey, business_date: dt.date):
    """The latest execution record of a check for one trading date, or None.

    Checks declared with the trading-date partitions record their partition; others on a
    partitioned asset (dbt tests) are matched through the partition of the run that ran them.
    """
    storage = instance.event_log_storage
    spec = asset_graph.get_check_spec(check_key)
    partition = business_date.isoformat()
    if spec.partitions_def is not None:
        history = storage.get_asset_check_execution_history(
            check_key, limit=1, partition_filter=PartitionKeyFilter(key=partition)
        )
        return history[0] if history else None
    history = storage.get_asset_check_execution_history(check_key, limit=200)
    if not _is_partitioned(asset_graph, check_key.asset_key):
        return history[0] if history else None
    run_ids = list(dict.fromkeys(record.run_id for record in history))
    partition_of_run = {
        r.dagster_run.run_id: r.dagster_run.tags.get("dagster/partition")
        for r in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
    } if run_ids else {}
    for record in history:
        if record.partition == partition or partition_of_run.get(record.run_id) == partition:
            return record
    return None


def check_status(instance: dg.DagsterInstance, asset_graph, business_date: dt.date) -> list[dict]:
    rows = []
    for check_key in sorted(asset_graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = asset_graph.get_check_spec(check_key)
        history = latest_check_execution(instance, asset_graph, check_key, business_date)
        row = {
            "asset": check_key.asset_key.to_user_string(),
            "name": check_key.name,
            "passed": None,
            "severity": None,
            "blocking": bool(spec.blocking),
            "description": spec.description,
            "metadata": {},
        }
        if history:
            record = history
            evaluation = _evaluation_of(record)
            if record.status == AssetCheckExecutionRecordStatus.PLANNED or evaluation is None:
                row["passed"] = None  # planned, still running or never reached (a failed upstream step)
            else:
                row["passed"] = bool(evaluation.passed)
                row["severity"] = evaluation.severity.value
                row["description"] = evaluation.description or spec.description
                row["metadata"] = jsonable(dict(evaluation.metadata or {}))
        rows.append(row)
    return rows


def _evaluation_of(record):
    event = record.event
    if event is None or event.dagster_event is None:
        return None
    data = event.dagster_event.event_specific_data
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def date_status(instance: dg.DagsterInstance, asset_graph, business_date: dt.date) -> dict:
    return {
        "date": business_date.isoformat(),
        "assets": asset_status(instance, asset_graph, business_date),
        "checks": check_status(instance, asset_graph, business_date),
    }
