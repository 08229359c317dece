"""What the Dagster instance recorded since a cursor: failed and passing checks, failed and successful runs.

One indexed query per page reads the event log by storage id, whatever the number of checks:
check evaluations and run outcomes (``event_logs`` by ``(dagster_event_type, id)``; on the
embedded SQLite storage these events are mirrored into its cross-run index shard, on
PostgreSQL they are the one table). Never a query per check key.

A check execution still ``PLANNED`` is waited on without being held anywhere: its outcome is
a later event (its evaluation, or its run's failure), which a later page reads. When a run
fails, its own events say which planned checks never completed and why:

- the check's step failed (an exception) or started and never finished: the check counts as
  failed (``crashed``);
- the step never started (an upstream step or blocking check failed first): the check did
  not run, and the failure upstream is the incident; nothing is added for it;
- a step failed for another reason than a check (a Python error, a missing file): a
  ``step_error`` failure on that step's assets;
- the run failed with none of the above (it was killed, could not start): a ``run_failure``.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._serdes import deserialize_value

from cei_assets.incidents.facts import Failure
from cei_assets.incidents.grouping import Pass, RunSuccess
from cei_assets.incidents.store import SourcedFailure
from cei_assets.status import jsonable

# Read in this order, by storage id; PIPELINE_* are Dagster's stored names of run outcomes.
EVENT_TYPES = (
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.RUN_SUCCESS,
)
# What a failed run's own events must say to classify its unfinished checks and steps.
RUN_EVENT_TYPES = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
}
PARTITION_TAG = "dagster/partition"
OVERRIDE_FLAG = "cei/override"  # asset_checks.gating.OVERRIDE_FLAG: an operator's release
CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"  # a step stopped by its own blocking check


@dataclass
class Outcomes:
    failures: list[SourcedFailure] = field(default_factory=list)
    passes: list[Pass] = field(default_factory=list)
    successes: list[RunSuccess] = field(default_factory=list)
    events_read: int = 0
    last_storage_id: int = -1  # the newest event read
    # The cursor to keep: every event up to it is older than the settle time, so no writer
    # that started before it can still commit an event below it.
    settled_storage_id: int = -1
    complete: bool = True  # False when the time budget stopped the read (the rest: next tick)
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (storage id, why): audited, skipped

    @property
    def empty(self) -> bool:
        return not (self.failures or self.passes or self.successes or self.unreadable)


def read_outcomes(
    instance: dg.DagsterInstance,
    asset_graph,
    after: int,
    *,
    settle_seconds: float = 10.0,
    page_size: int = 2000,
    time_budget_seconds: float = 20.0,
    now: float | None = None,
) -> Outcomes:
    """Failures, passes and successful runs recorded after storage id ``after``."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        raise RuntimeError(
            f"the incident sensor reads Dagster's SQL event log; this instance uses {type(storage).__name__}"
        )
    started = time.monotonic()
    now = time.time() if now is None else now
    outcomes = Outcomes(last_storage_id=after, settled_storage_id=after)
    settling = True
    position = after
    while True:
        rows = _read_page(storage, position, page_size)
        if not rows:
            break
        records = []
        for row_id, text in rows:
            try:
                records.append((row_id, deserialize_value(text, EventLogEntry)))
            except Exception as error:  # one unreadable event must not stop every later one
                outcomes.unreadable.append((row_id, f"{type(error).__name__}: {error}"))
        runs = _runs_by_id(instance, {entry.run_id for _, entry in records if entry.run_id})
        for storage_id, entry in records:
            _classify(instance, asset_graph, storage_id, entry, runs, outcomes)
            outcomes.events_read += 1
            outcomes.last_storage_id = storage_id
            if settling and entry.timestamp <= now - settle_seconds:
                outcomes.settled_storage_id = storage_id
            else:
                settling = False
        position = outcomes.last_storage_id = max(outcomes.last_storage_id, rows[-1][0])
        if len(rows) < page_size:
            break
        if time.monotonic() - started > time_budget_seconds:
            outcomes.complete = False
            break
    return outcomes


def _read_page(storage: SqlEventLogStorage, after: int, limit: int) -> list[tuple[int, str]]:
    query = (
        sa.select(SqlEventLogStorageTable.c.id, SqlEventLogStorageTable.c.event)
        .where(SqlEventLogStorageTable.c.dagster_event_type.in_([t.value for t in EVENT_TYPES]))
        .where(SqlEventLogStorageTable.c.id > after)
        .order_by(SqlEventLogStorageTable.c.id.asc())
        .limit(limit)
    )
    with storage.index_connection() as conn:
        rows = conn.execute(query).fetchall()
    return [(row_id, text) for row_id, text in rows]


def _runs_by_id(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, dg.DagsterRun]:
    if not run_ids:
        return {}
    return {r.dagster_run.run_id: r.dagster_run for r in instance.get_run_records(dg.RunsFilter(run_ids=sorted(run_ids)))}


def _classify(instance, asset_graph, storage_id: int, entry: EventLogEntry, runs, outcomes: Outcomes) -> None:
    event = entry.dagster_event
    if event is None:
        return
    run = runs.get(entry.run_id)
    if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation: dg.AssetCheckEvaluation = event.event_specific_data
        partition = _partition(asset_graph, evaluation.asset_key, evaluation.partition, run)
        if evaluation.passed:
            outcomes.passes.append(Pass(
                asset_key=evaluation.asset_key.to_user_string(), check_name=evaluation.check_name,
                partition=partition, run_id=entry.run_id or "", storage_id=storage_id,
                override=bool(getattr(evaluation.metadata.get(OVERRIDE_FLAG), "value", False)),
            ))
        else:
            failure = _check_failure(asset_graph, evaluation, entry, partition)
            outcomes.failures.append(SourcedFailure(failure, f"check:{storage_id}", storage_id))
    elif event.event_type == DagsterEventType.RUN_FAILURE:
        outcomes.failures.extend(failed_run(instance, asset_graph, entry, storage_id, run))
    elif event.event_type == DagsterEventType.RUN_SUCCESS:
        outcomes.successes.append(RunSuccess(
            run_id=entry.run_id, job_name=run.job_name if run else None,
            partition=run.tags.get(PARTITION_TAG) if run else None, storage_id=storage_id,
        ))


def _check_failure(asset_graph, evaluation: dg.AssetCheckEvaluation, entry: EventLogEntry, partition) -> Failure:
    from cei_assets.cli import check_failure_text  # the one wording of a failed check, CLI and incidents alike

    spec = _check_spec(asset_graph, evaluation.asset_check_key)
    blocking = evaluation.blocking if evaluation.blocking is not None else bool(spec and spec.blocking)
    return Failure(
        kind="check",
        run_id=entry.run_id or "",
        partition=partition,
        asset_key=evaluation.asset_key.to_user_string(),
        check_name=evaluation.check_name,
        blocking=bool(blocking),
        warn_only=evaluation.severity == dg.AssetCheckSeverity.WARN,
        description=check_failure_text(evaluation, spec.description if spec else None),
        metadata=jsonable(dict(evaluation.metadata or {})),
        evaluated_at=entry.timestamp,
        step_key=entry.step_key,
    )


def failed_run(instance, asset_graph, run_failure: EventLogEntry, storage_id: int, run) -> list[SourcedFailure]:
    """What a failed run reveals beyond its failed check evaluations (read from its own events)."""
    run_id = run_failure.run_id
    partition = run.tags.get(PARTITION_TAG) if run else None
    job_name = run.job_name if run else None
    records = instance.get_records_for_run(run_id, of_type=RUN_EVENT_TYPES).records
    started, succeeded = set(), set()
    step_errors: dict[str, tuple[str, str, float]] = {}  # step -> (error class, message, when)
    check_stopped: set[str] = set()  # steps stopped by their own blocking check
    planned: dict[tuple[str, str], tuple[str | None, list[str | None]]] = {}  # check -> (step, partitions)
    evaluated: set[tuple[str, str]] = set()
    failed_evaluations = 0
    step_assets: dict[str, list[str]] = {}
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        step = event.step_key
        kind = event.event_type
        if kind == DagsterEventType.STEP_START:
            started.add(step)
        elif kind == DagsterEventType.STEP_SUCCESS:
            succeeded.add(step)
        elif kind == DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            if error is not None and CHECK_FAILED_ERROR in (error.cls_name or "") + (error.message or ""):
                check_stopped.add(step)
            else:
                step_errors[step] = (_error_class(error), _error_message(error), entry.timestamp)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            data = event.event_specific_data
            partitions = list(data.partitions_subset.get_partition_keys()) if data.partitions_subset else [None]
            planned[(data.asset_key.to_user_string(), data.check_name)] = (step, partitions)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            evaluated.add((data.asset_key.to_user_string(), data.check_name))
            failed_evaluations += not data.passed
        elif kind == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            step_assets.setdefault(step, []).append(event.asset_key.to_user_string())

    found: list[SourcedFailure] = []
    steps_explained: set[str] = set()
    for (asset, check_name), (step, partitions) in sorted(planned.items()):
        if (asset, check_name) in evaluated or step in check_stopped:
            continue
        if step in step_errors:
            _, message, when = step_errors[step]
            why = f"did not complete: step {step} failed: {message}"
        elif step in started and step not in succeeded:
            when = run_failure.timestamp
            why = f"did not complete: step {step} started and never finished (the run failed)"
        else:
            continue  # never started: halted upstream, and that failure is the incident
        steps_explained.add(step)
        key = dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), check_name)
        spec = _check_spec(asset_graph, key)
        for planned_partition in partitions:
            check_partition = _partition(asset_graph, key.asset_key, planned_partition, run)
            failure = Failure(
                kind="check", run_id=run_id, partition=check_partition, asset_key=asset, check_name=check_name,
                blocking=bool(spec and spec.blocking), warn_only=False, crashed=True,
                description=f"{(spec.description + ': ') if spec and spec.description else ''}{why}",
                metadata={"job_name": job_name}, evaluated_at=when, step_key=step,
            )
            found.append(SourcedFailure(failure, f"crashed:{run_id}:{asset}/{check_name}:{check_partition}", storage_id))

    for step, (error_class, message, when) in sorted(step_errors.items()):
        assets = sorted(set(step_assets.get(step, [])))
        if not assets and step in steps_explained:
            continue  # a check-only step: its crashed checks say it
        failure = Failure(
            kind="step_error", run_id=run_id, partition=partition, asset_key=assets[0] if assets else None,
            check_name=None, blocking=True, warn_only=False,
            description=f"step {step} failed: {message}",
            metadata={"job_name": job_name, "assets": assets, "error_class": error_class},
            evaluated_at=when, step_key=step,
        )
        found.append(SourcedFailure(failure, f"step:{run_id}:{step}", storage_id))

    if not found and not failed_evaluations:
        message = (run_failure.message or "").strip() or "the run failed"
        failure = Failure(
            kind="run_failure", run_id=run_id, partition=partition, asset_key=None, check_name=None,
            blocking=True, warn_only=False, description=f"run {run_id[:8]} ({job_name}) failed: {message}",
            metadata={"job_name": job_name, "failure_reason": run.tags.get("dagster/failure_reason") if run else None},
            evaluated_at=run_failure.timestamp,
        )
        found.append(SourcedFailure(failure, f"run:{run_id}", storage_id))
    return found


def steps_succeeded(instance: dg.DagsterInstance, run_id: str) -> frozenset[str]:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_SUCCESS).records
    return frozenset(r.event_log_entry.dagster_event.step_key for r in records if r.event_log_entry.dagster_event)


def with_steps(instance: dg.DagsterInstance, successes: Sequence[RunSuccess], partitions) -> list[RunSuccess]:
    """Successful runs of these partitions, with the steps they ran (read only where needed)."""
    return [
        RunSuccess(s.run_id, s.job_name, s.partition, s.storage_id, steps_succeeded(instance, s.run_id))
        if s.partition in partitions else s
        for s in successes
    ]


def _check_spec(asset_graph, key: dg.AssetCheckKey):
    try:
        return asset_graph.get_check_spec(key) if key in asset_graph.asset_check_keys else None
    except Exception:
        return None


def _partition(asset_graph, asset_key: dg.AssetKey, recorded: str | None, run) -> str | None:
    """The partition a check result is about.

    The evaluation's own partition when it has one; else the run's partition for a
    partitioned asset (dbt tests record none); None for an unpartitioned asset.
    """
    if recorded:
        return recorded
    try:
        partitioned = asset_graph.get(asset_key).partitions_def is not None
    except Exception:
        partitioned = True  # unknown asset: the run's partition is the best fact there is
    return run.tags.get(PARTITION_TAG) if (run is not None and partitioned) else None


def _error_class(error) -> str | None:
    while error is not None and error.cause is not None:
        error = error.cause
    return error.cls_name if error is not None else None


def _error_message(error) -> str:
    """The user-facing reason: the innermost error's first line (as ``cei run`` words it)."""
    if error is None:
        return "unknown error"
    message = (error.message or "").strip()
    cause = error.cause
    while cause is not None:
        message = (cause.message or message).strip()
        cause = cause.cause
    first_line = message.splitlines()[0] if message else "unknown error"
    return first_line.removeprefix("dagster._core.definitions.events.Failure: ")
