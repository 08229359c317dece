"""Fail-closed gating that holds across runs, and the operator's override.

Dagster's blocking checks stop downstream assets within the run that ran the check. A later run
that selects only the downstream assets would not see that failure; this gate does: before an
asset builds partition D, every blocking check upstream of it (outside this run's own
selection, which re-checks itself) must have passed for D in its latest evaluation. An
operator may release a failed check with ``cei override``, recorded in the Dagster event log
with who, when and why, and shown in the UI on the check.
"""

import datetime as dt
import getpass
import os
import time
from dataclasses import dataclass

import dagster as dg

from cei_assets.status import latest_check_execution

OVERRIDE_FLAG = "cei/override"


@dataclass(frozen=True)
class UnresolvedFailure:
    check_key: dg.AssetCheckKey
    description: str
    run_id: str

    def __str__(self) -> str:
        return f"{self.check_key.asset_key.to_user_string()} / {self.check_key.name} ({self.description})"


def _evaluation(record):
    if record is None or record.event is None or record.event.dagster_event is None:
        return None
    data = record.event.dagster_event.event_specific_data
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def upstream_keys(asset_graph, keys) -> set[dg.AssetKey]:
    seen: set[dg.AssetKey] = set()
    todo = list(keys)
    while todo:
        for parent in asset_graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def unresolved_blocking_failures(instance, asset_graph, targets, business_date: dt.date,
                                 rechecked_in_this_run=frozenset()) -> list[UnresolvedFailure]:
    """Blocking checks upstream of ``targets`` whose latest evaluation for the date failed."""
    failures = []
    for asset_key in sorted(upstream_keys(asset_graph, targets) - set(rechecked_in_this_run)):
        node = asset_graph.get(asset_key)
        for check_key in sorted(node.check_keys, key=lambda k: k.name):
            if not asset_graph.get_check_spec(check_key).blocking:
                continue
            record = latest_check_execution(instance, asset_graph, check_key, business_date)
            evaluation = _evaluation(record)
            if evaluation is not None and not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                failures.append(UnresolvedFailure(check_key, evaluation.description or "failed", record.run_id))
    return failures


def enforce_upstream_gate(context: dg.AssetExecutionContext) -> None:
    """Refuse to build this partition while an upstream blocking check stands failed."""
    # The code location's whole graph: a run of a subset only knows its own assets and checks.
    from cei_assets.definitions import defs

    asset_graph = defs.resolve_asset_graph()
    run_selection = context.run.asset_selection
    rechecked = set(run_selection) if run_selection is not None else set(asset_graph.get_all_asset_keys())
    business_date = dt.date.fromisoformat(context.partition_key)
    failures = unresolved_blocking_failures(
        context.instance, asset_graph, context.selected_asset_keys, business_date, rechecked
    )
    if failures:
        listed = "; ".join(str(f) for f in failures)
        raise dg.Failure(
            description=(
                f"refused to build {business_date}: upstream blocking check(s) failed in an earlier run and have not "
                f"passed since: {listed}. Fix the data and rerun, or release with "
                f"`cei override --date {business_date} --check NAME --reason TEXT`."
            ),
            metadata={"failed_checks": [str(f.check_key.to_user_string()) for f in failures]},
        )


def find_check(asset_graph, name: str, asset: str | None = None) -> dg.AssetCheckKey:
    matches = [
        k for k in asset_graph.asset_check_keys
        if k.name == name and (asset is None or k.asset_key.to_user_string() == asset)
    ]
    if not matches:
        raise ValueError(f"no check named {name!r}" + (f" on {asset}" if asset else ""))
    if len(matches) > 1:
        assets = ", ".join(sorted(k.asset_key.to_user_string() for k in matches))
        raise ValueError(f"several assets have a check named {name!r} ({assets}): say which with --asset")
    return matches[0]


def record_override(instance, asset_graph, check_key: dg.AssetCheckKey, business_date: dt.date, reason: str,
                    operator: str | None = None) -> dg.AssetCheckEvaluation:
    """Release a failed check for one date: a passing evaluation that says who, when and why."""
    operator = operator or os.environ.get("CEI_OPERATOR") or getpass.getuser()
    record = latest_check_execution(instance, asset_graph, check_key, business_date)
    previous = _evaluation(record)
    if previous is None or previous.passed:
        state = "has not run" if previous is None else "passed"
        raise ValueError(f"{check_key.to_user_string()} {state} for {business_date}: there is nothing to override")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    spec = asset_graph.get_check_spec(check_key)
    evaluation = dg.AssetCheckEvaluation(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=True,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"OVERRIDDEN by {operator} at {now}: {reason} (was: {previous.description})",
        metadata={
            OVERRIDE_FLAG: True,
            "overridden_by": operator,
            "overridden_at": now,
            "reason": reason,
            "overridden_run_id": record.run_id,
            "original_description": previous.description or "",
        },
        partition=business_date.isoformat() if asset_graph.get(check_key.asset_key).partitions_def is not None else None,
        blocking=spec.blocking,
    )
    _audit_override(check_key, business_date, reason, operator, record.run_id, previous.description)
    instance.report_runless_asset_event(evaluation)
    return evaluation


def _audit_override(check_key, business_date, reason, operator, overridden_run_id, was) -> None:
    """Every override goes to the incident audit log first: no release without its record."""
    import sqlalchemy as sa

    from cei_assets.incidents.db import IncidentStoreError
    from cei_assets.incidents.store import IncidentStore

    check = f"{check_key.asset_key.to_user_string()}/{check_key.name}"  # as incidents name checks
    try:
        store = IncidentStore()
        # On the timeline of the open incident of that check and date, when there is one.
        incident = next((i for i in store.active_incidents()
                         if any(f.failure.check_id == check and f.failure.partition in (business_date.isoformat(), None)
                                for f in i.failures)), None)
        store.audit(
            "override", actor=operator, incident_id=incident.id if incident else None, check=check,
            date=business_date.isoformat(), reason=reason, overridden_run_id=overridden_run_id, was=was,
        )
    except (IncidentStoreError, OSError, sa.exc.SQLAlchemyError) as error:
        raise ValueError(f"override not recorded: the audit log cannot be written ({error})") from None
