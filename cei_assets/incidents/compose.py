"""An incident's content from its failures: title, signature, impact, routing, similar incidents
and the report.

``describe_incident`` is what the incident sensor calls for every new or grown incident.
Everything but the report's wording is deterministic (same failures, graph, history and
configuration give the same content); the report is the LLM's when it can answer and the
template's otherwise, so an LLM problem never stops an incident from being described.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cei_assets.incidents import llm
from cei_assets.incidents.facts import Failure, Impact, PastIncident, Report, Routing, SimilarIncident
from cei_assets.incidents.impact import LineageView, assess_impact, halts
from cei_assets.incidents.redaction import RedactionConfig, accounts_of_landing, load_redaction
from cei_assets.incidents.reports import ReportStore, gather_evidence, write_report
from cei_assets.incidents.routing import OnCallConfig, RoutingConfig, load_oncall, load_routing, route
from cei_assets.incidents.similar import failure_signature, rank_similar

__all__ = ["IncidentContent", "IncidentSettings", "describe_incident"]


@dataclass
class IncidentContent:
    title: str
    signature: str
    impact: Impact
    routing: Routing
    similar: list[SimilarIncident]
    report: Report


@dataclass
class IncidentSettings:
    """What describing an incident is configured by; anything left None is read when needed
    (the YAML files and their ``CEI_*_FILE`` variables, the ``ANTHROPIC_*``/``CEI_LLM_*``
    variables, the landing root's accounts)."""

    llm: llm.LLMSettings | None = None
    routing: RoutingConfig | None = None
    oncall: OnCallConfig | None = None
    redaction: RedactionConfig | None = None
    known_accounts: list[str] | None = None
    code_version: str | None = None


def describe_incident(
    failures: list[Failure],
    asset_graph,
    *,
    store: ReportStore,
    instance=None,
    history: Sequence[PastIncident] = (),
    settings: IncidentSettings | llm.LLMSettings | None = None,
    deadline: float | None = None,
) -> IncidentContent:
    """Describe a group of failures (one incident). Raises only for invalid routing or redaction
    configuration (the message names the file and key); never for an LLM problem.

    ``deadline`` (``time.monotonic()`` seconds): the LLM call must end by then, retries included;
    with too little time left the template writes the report (and says so).
    """
    if not failures:
        raise ValueError("an incident has at least one failure")
    if isinstance(settings, llm.LLMSettings):
        settings = IncidentSettings(llm=settings)
    settings = settings or IncidentSettings()
    routing_config = settings.routing or load_routing()
    oncall_config = settings.oncall or load_oncall()
    redaction = settings.redaction or load_redaction()

    failures = sorted(failures, key=lambda f: (f.evaluated_at, f.check_id, f.partition or "", f.run_id))
    lineage = LineageView(asset_graph)
    impact = assess_impact(failures, lineage, run_assets=_planned_assets(instance, failures))
    signature = failure_signature(failures, asset_graph)
    similar = rank_similar(failures, history, signature=signature)
    first_at = min((f.evaluated_at for f in failures if f.evaluated_at), default=None)
    routing = route(
        failures, impact, similar,
        routing_config=routing_config, oncall_config=oncall_config,
        at=dt.datetime.fromtimestamp(first_at, dt.timezone.utc) if first_at else None,
        asset_graph=asset_graph,
    )
    title = incident_title(failures, impact)

    evidence = gather_evidence(
        failures, title=title, signature=signature, impact=impact, routing=routing, similar=similar,
        asset_graph=asset_graph, instance=instance, version=settings.code_version,
    )
    llm_settings, settings_error = settings.llm, None
    if llm_settings is None:
        try:
            llm_settings = llm.LLMSettings.from_env()
        except (llm.LLMConfigError, ValueError) as error:
            settings_error = str(error)
    known = settings.known_accounts if settings.known_accounts is not None else _landing_accounts()
    report = write_report(evidence, store=store, settings=llm_settings, redaction=redaction,
                          known_accounts=known, settings_error=settings_error, deadline=deadline)
    return IncidentContent(title=title, signature=signature, impact=impact, routing=routing,
                           similar=similar, report=report)


def incident_title(failures: Sequence[Failure], impact: Impact) -> str:
    """``landing/eod_prices price_move_data_error failed for 2026-10-01 (+2 more); halts the P&L``."""
    roots = set(impact.root_assets)
    primary = next((f for f in failures if halts(f) and f.asset_key in roots), None) \
        or next((f for f in failures if f.asset_key in roots), None) or failures[0]
    if primary.kind == "check":
        what = f"{primary.asset_key} {primary.check_name} {'failed' if halts(primary) else 'warned'}"
    elif primary.kind == "step_error":
        what = f"step {primary.step_key} failed"
    else:
        what = f"run {primary.run_id[:8]} failed"
    partitions = sorted({f.partition for f in failures if f.partition})
    if partitions:
        what += f" for {partitions[0]}" + (f" and {len(partitions) - 1} more date(s)" if len(partitions) > 1 else "")
    others = len({f.check_id for f in failures}) - 1
    if others > 0:
        what += f" (+{others} more)"
    if "daily_pnl" in impact.halted:
        what += "; halts the P&L"
    elif impact.halted:
        what += f"; halts {len(impact.halted)} asset(s)"
    elif impact.degraded:
        what += f"; degrades {len(impact.degraded)} asset(s)"
    return what


def _planned_assets(instance, failures: Sequence[Failure]) -> dict[str, list[str]]:
    """For runs that failed without naming an asset: the assets they had planned (not built)."""
    wanted = sorted({f.run_id for f in failures if f.kind == "run_failure" and not f.metadata.get("assets")
                     and not f.asset_key and f.run_id})
    if instance is None or not wanted:
        return {}
    from dagster._core.events import DagsterEventType

    planned: dict[str, list[str]] = {}
    for run_id in wanted:
        try:
            records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
        except Exception:
            continue  # unknown run: its impact stays unknown, and routing treats that as critical
        keys = {r.event_log_entry.dagster_event.asset_key.to_user_string()
                for r in records if r.event_log_entry.dagster_event is not None}
        planned[run_id] = sorted(keys)
    return planned


def _landing_accounts() -> list[str]:
    from cei_assets import settings as cei_settings

    return accounts_of_landing(cei_settings.landing_dir())
