"""Which failures are one incident, and when an incident is over.

A fund's bad EOD mark fails the check on marks, then the checks on market values and P&L
downstream of it: one problem, so one incident. The rules, in order, for each new failure:

1. **Same run**: failures of one run are one incident.
2. **Same root asset and partition, within a window** (6 h by default): a rerun that fails the
   same asset for the same date adds to the incident already open for it.
3. **Cascade**: a failure on an asset downstream (in the Dagster asset graph) of an asset that
   already has an open incident for that partition attaches to that incident. An
   unpartitioned asset (reference data) is upstream of every partition.

Otherwise the failure opens an incident. Acknowledged incidents are still open for grouping;
resolved ones are not (a failure after resolution is a new incident).

An incident resolves itself when each of its failures has been cleared by a later event of
the same partition: a check by a passing evaluation of that check (an operator's override is
not a pass: it releases, it does not fix); a failed step by a later successful run that ran
that step; a failed run by a later successful run of the same job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from cei_assets.incidents.store import Incident, SourcedFailure, StoredFailure

DEFAULT_WINDOW = dt.timedelta(hours=6)


@dataclass(frozen=True)
class Pass:
    """A passing check evaluation, as read from Dagster."""

    asset_key: str
    check_name: str
    partition: str | None
    run_id: str
    storage_id: int
    override: bool = False  # an operator's release (``cei override``), not a fix

    @property
    def check_id(self) -> str:
        return f"{self.asset_key}/{self.check_name}"


@dataclass(frozen=True)
class RunSuccess:
    """A run that succeeded, and (when it matters) the steps it ran."""

    run_id: str
    job_name: str | None
    partition: str | None
    storage_id: int
    steps: frozenset[str] | None = None  # None: not read (no failed step of its partition is open)


@dataclass
class _Group:
    incident_id: int | None
    run_ids: set[str] = field(default_factory=set)
    asset_partitions: set[tuple[str, str | None]] = field(default_factory=set)
    last_failure_at: float = 0.0
    new: list[SourcedFailure] = field(default_factory=list)

    def add(self, failure) -> None:
        if failure.run_id:
            self.run_ids.add(failure.run_id)
        if failure.asset_key:
            self.asset_partitions.add((failure.asset_key, failure.partition))
        self.last_failure_at = max(self.last_failure_at, failure.evaluated_at or 0.0)


class Lineage:
    """Upstream assets from the Dagster asset graph, memoised; unknown assets have none."""

    def __init__(self, asset_graph):
        self._graph = asset_graph
        self._upstream: dict[str, frozenset[str]] = {}

    def upstream(self, asset: str) -> frozenset[str]:
        found = self._upstream.get(asset)
        if found is None:
            seen: set[str] = set()
            todo = [dg.AssetKey.from_user_string(asset)]
            while todo:
                key = todo.pop()
                try:
                    parents = self._graph.get(key).parent_keys
                except Exception:  # not in this code location's graph (removed, or another location's)
                    continue
                for parent in parents:
                    name = parent.to_user_string()
                    if name not in seen:
                        seen.add(name)
                        todo.append(parent)
            found = self._upstream[asset] = frozenset(seen)
        return found


def group_failures(
    new: Sequence[SourcedFailure],
    active: Sequence[Incident],
    asset_graph,
    window: dt.timedelta = DEFAULT_WINDOW,
) -> list[tuple[int | None, list[SourcedFailure]]]:
    """Assign new failures (in the order Dagster recorded them) to open incidents or new ones.

    Returns ``(incident id, failures)`` for open incidents that gain failures, then
    ``(None, failures)`` for each incident to open, in order.
    """
    lineage = Lineage(asset_graph)
    groups: list[_Group] = []
    for incident in sorted(active, key=lambda i: i.id):
        group = _Group(incident.id)
        for stored in incident.failures:
            group.add(stored.failure)
        groups.append(group)

    seconds = window.total_seconds()
    for sf in new:
        failure = sf.failure
        group = (
            _first(groups, lambda g: bool(failure.run_id) and failure.run_id in g.run_ids)
            or _first(groups, lambda g: (
                failure.asset_key is not None
                and (failure.asset_key, failure.partition) in g.asset_partitions
                and abs((failure.evaluated_at or 0.0) - g.last_failure_at) <= seconds
            ))
            or _first(groups, lambda g: failure.asset_key is not None and any(
                asset in lineage.upstream(failure.asset_key) and (partition == failure.partition or partition is None)
                for asset, partition in g.asset_partitions
            ))
        )
        if group is None:
            group = _Group(None)
            groups.append(group)
        group.add(failure)
        group.new.append(sf)

    existing = [(g.incident_id, g.new) for g in groups if g.incident_id is not None and g.new]
    opened = [(None, g.new) for g in groups if g.incident_id is None]
    return existing + opened


def _first(groups: list[_Group], matches: Callable[[_Group], bool]) -> _Group | None:
    return next((g for g in groups if matches(g)), None)


# ---------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Recovery:
    failure_id: int
    incident_id: int
    storage_id: int
    note: str


def recoveries(active: Sequence[Incident], passes: Sequence[Pass], successes: Sequence[RunSuccess]) -> list[Recovery]:
    """Failures of open incidents cleared by a later pass (or successful run) of the same partition."""
    latest_pass: dict[tuple[str, str, str | None], Pass] = {}
    for p in passes:
        if not p.override:
            key = (p.asset_key, p.check_name, p.partition)
            if key not in latest_pass or p.storage_id > latest_pass[key].storage_id:
                latest_pass[key] = p
    found = []
    for incident in active:
        for stored in incident.failures:
            if stored.recovered:
                continue
            cleared = _clearing_event(stored, latest_pass, successes)
            if cleared is not None:
                found.append(Recovery(stored.id, incident.id, *cleared))
    return found


def _clearing_event(stored: StoredFailure, latest_pass, successes) -> tuple[int, str] | None:
    f = stored.failure
    after = stored.storage_id if stored.storage_id is not None else -1
    where = f" for {f.partition}" if f.partition else ""
    if f.kind == "check":
        p = latest_pass.get((f.asset_key, f.check_name, f.partition))
        if p is not None and p.storage_id > after:
            run = f"run {p.run_id[:8]}" if p.run_id else "a runless evaluation"
            return p.storage_id, f"{f.check_id} passed again{where} ({run})"
        return None
    for run in sorted(successes, key=lambda r: r.storage_id):
        if run.storage_id <= after or run.partition != f.partition:
            continue
        if f.kind == "step_error" and run.steps is not None and f.step_key in run.steps:
            return run.storage_id, f"step {f.step_key} succeeded{where} (run {run.run_id[:8]})"
        if f.kind == "run_failure" and run.job_name and run.job_name == f.metadata.get("job_name"):
            return run.storage_id, f"job {run.job_name} succeeded{where} (run {run.run_id[:8]})"
    return None


def resolutions(active: Sequence[Incident], cleared: Sequence[Recovery]) -> list[tuple[int, str]]:
    """Open incidents whose every failure is now cleared, with the note saying what passed."""
    notes: dict[int, list[str]] = {}
    cleared_ids = set()
    for r in cleared:
        cleared_ids.add(r.failure_id)
        notes.setdefault(r.incident_id, []).append(r.note)
    done = []
    for incident in active:
        if incident.id not in notes or not incident.failures:
            continue
        if all(f.recovered or f.id in cleared_ids for f in incident.failures):
            earlier = [f.recovery_note for f in incident.failures if f.recovered and f.recovery_note]
            said = list(dict.fromkeys(earlier + notes[incident.id]))
            done.append((incident.id, "Resolved automatically: " + "; ".join(said) + "."))
    return done


def partitions_with_open_step_failures(active: Sequence[Incident]) -> set[str | None]:
    """Partitions for which a successful run's steps are worth reading (a failed step is open)."""
    return {
        f.failure.partition
        for incident in active
        for f in incident.failures
        if f.failure.kind == "step_error" and not f.recovered
    }
