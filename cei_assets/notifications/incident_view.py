"""An incident as the notifications read it: one plain dict, whatever handed it over.

The contract is the shape of ``cei incidents list --json`` (id, title, severity, status, team,
assets, checks, halted, degraded, report) plus partition, run_ids, owners, routing,
opened/resolved times and the resolution. The store's ``Incident`` objects, their
``to_dict()`` (where ``report`` is Markdown and ``report_sections`` the fields) and plain dicts
are all accepted; what is missing is left empty, never invented.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def incident_view(incident: Any) -> dict[str, Any]:
    """The normalised dict; raises ValueError when there is no incident id to speak of."""
    data = _as_dict(incident)
    if data.get("id") is None:
        raise ValueError("an incident to notify needs its id")

    report = data.get("report")
    sections = data.get("report_sections")
    if isinstance(report, dict):
        sections = report
    report_markdown = report if isinstance(report, str) else None
    routing = data.get("routing") if isinstance(data.get("routing"), dict) else {}
    impact = data.get("impact") if isinstance(data.get("impact"), dict) else {}

    failures = [_failure(f) for f in data.get("failures") or [] if isinstance(f, dict)]
    assets = list(data.get("assets") or _unique(f["asset_key"] for f in failures if f["asset_key"]))
    checks = list(data.get("checks") or _unique(f["check_id"] for f in failures if f["kind"] == "check"))
    partitions = data.get("partitions") or _unique(f["partition"] for f in failures)
    partition = data.get("partition") or next((p for p in partitions if p), None)
    run_ids = list(data.get("run_ids") or _unique(f["run_id"] for f in failures if f["run_id"]))

    owners = list(data.get("owners") or [])
    if not owners:
        by_asset = impact.get("owners") or {}
        roots = list(impact.get("root_assets") or []) + assets
        owners = _unique(owner for asset in roots for owner in by_asset.get(asset, []))

    return {
        "id": int(data["id"]),
        "title": str(data.get("title") or f"Incident {data['id']}"),
        "severity": data.get("severity") or routing.get("severity"),
        "status": data.get("status") or "open",
        "team": data.get("team") or routing.get("team"),
        "assets": assets,
        "checks": checks,
        "halted": data.get("halted") if data.get("halted") is not None else impact.get("halted"),
        "degraded": data.get("degraded") if data.get("degraded") is not None else impact.get("degraded"),
        "report": sections if isinstance(sections, dict) else None,
        "report_markdown": report_markdown,
        "partition": partition,
        "run_ids": run_ids,
        "owners": owners,
        "routing": routing,
        "failures": failures,
        "opened_at": data.get("opened_at"),
        "acknowledged_at": data.get("acknowledged_at"),
        "acknowledged_by": data.get("acknowledged_by"),
        "resolved_at": data.get("resolved_at"),
        "resolved_by": data.get("resolved_by"),
        "resolution": data.get("resolution"),
        "auto_resolved": bool(data.get("auto_resolved")),
        "describe_error": data.get("describe_error"),
        "content_pending": bool(data.get("content_pending")),
    }


def _as_dict(incident: Any) -> dict[str, Any]:
    if isinstance(incident, dict):
        return dict(incident)
    if incident is None:
        return {}
    try:
        return incident.to_dict()
    except Exception:  # e.g. a stored report missing a section: read the fields themselves
        if not dataclasses.is_dataclass(incident):
            raise
        data = {f.name: getattr(incident, f.name) for f in dataclasses.fields(incident) if f.name != "failures"}
        data["failures"] = [
            {**stored.failure.to_dict(), "check_id": stored.failure.check_id, "recovered_at": stored.recovered_at}
            for stored in getattr(incident, "failures", [])
        ]
        return data


def _failure(f: dict) -> dict[str, Any]:
    kind = f.get("kind") or "check"
    asset, check = f.get("asset_key"), f.get("check_name")
    check_id = f.get("check_id") or (f"{asset}/{check}" if kind == "check" else f"{kind}:{f.get('step_key') or f.get('run_id')}")
    return {
        "kind": kind,
        "check_id": check_id,
        "asset_key": asset,
        "check_name": check,
        "step_key": f.get("step_key"),
        "partition": f.get("partition"),
        "run_id": f.get("run_id"),
        "blocking": bool(f.get("blocking")),
        "warn_only": bool(f.get("warn_only")),
        "crashed": bool(f.get("crashed")),
        "description": f.get("description") or "",
        "metadata": f.get("metadata") if isinstance(f.get("metadata"), dict) else {},
        "recovered_at": f.get("recovered_at"),
    }


def _unique(values) -> list:
    return list(dict.fromkeys(values))
