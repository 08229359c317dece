"""The incident report: its evidence, the template writer, the LLM writer, the cache and the audit.

1. ``gather_evidence`` puts the facts in one JSON document, deterministically: each failure
   with its check's metadata and sample rows, the lineage impact, the routing decided by code,
   similar past incidents, the partition's recent runs and the code version.
2. ``template_report`` words every section from that document alone. It runs inside the firm
   and may show real values.
3. ``write_report`` asks the LLM for the prose sections of the *redacted* document; its
   answer is cached by the document's hash (a cache hit makes no call). Whenever the LLM
   cannot answer — no key, over the daily budget, an API error, a timeout, an overload, an
   invalid answer — the template writes the report and says why. Every attempt, cache hits
   and fallbacks included, is one ``llm_call`` entry in the audit log with tokens and cost.

The routing section is always the template's: severity, team and on-call are decided by code.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import subprocess
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from typing import Any, Protocol

from cei_assets.incidents import llm
from cei_assets.incidents.facts import Failure, Impact, Report, Routing, SimilarIncident
from cei_assets.incidents.families import check_family, rule_written
from cei_assets.incidents.impact import halts
from cei_assets.incidents.redaction import RedactionConfig, Redactor

PROMPT_VERSION = 1
MAX_FAILURES = 12  # in the evidence; the rest are counted
MAX_SAMPLE_ROWS = 5
MAX_LIST_ITEMS = 20
MAX_TEXT = 800
RECENT_RUNS = 5
PARTITION_TAG = "dagster/partition"


class ReportStore(Protocol):
    """What the report writer needs of the incident store (``cei_assets.incidents.store``)."""

    def get_report(self, evidence_hash: str) -> dict | None: ...

    def put_report(self, evidence_hash: str, report: dict, model: str) -> None: ...

    def llm_spend_today(self) -> float: ...

    def audit(self, event: str, **details: Any) -> None: ...


# --------------------------------------------------------------------------------------------
# Evidence


def gather_evidence(
    failures: Sequence[Failure],
    *,
    title: str,
    signature: str,
    impact: Impact,
    routing: Routing,
    similar: Sequence[SimilarIncident],
    asset_graph=None,
    instance=None,
    version: str | None = None,
) -> dict[str, Any]:
    """The facts of an incident in one JSON document. Same inputs, same document."""
    ordered = sorted(failures, key=lambda f: (not halts(f), f.asset_key not in impact.root_assets,
                                              f.evaluated_at, f.check_id))
    partitions = sorted({f.partition for f in failures if f.partition})
    shown = ordered[:MAX_FAILURES]
    return {
        "title": title,
        "partition": partitions[0] if len(partitions) == 1 else (partitions or None),
        "signature": signature,
        "failures": [_failure_facts(f, asset_graph) for f in shown],
        "failures_not_shown": len(ordered) - len(shown),
        "impact": {**impact.to_dict(), "unaffected_count": len(impact.unaffected)},
        "routing": routing.to_dict(),
        "similar_incidents": [
            {"id": s.id, "title": s.title, "score": s.score, "resolved_by": s.resolved_by, "resolution": s.resolution}
            for s in similar
        ],
        "recent_runs": recent_runs(instance, partitions, sorted({f.run_id for f in failures if f.run_id})),
        "code_version": version if version is not None else code_version(),
    }


def _failure_facts(failure: Failure, asset_graph) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "check_id": failure.check_id,
        "kind": failure.kind,
        "asset": failure.asset_key,
        "check": failure.check_name,
        "family": check_family(failure, asset_graph),
        "effect": "halts downstream" if halts(failure) else "warns only",
        "crashed": failure.crashed,
        "rule": rule_written(failure, asset_graph),
        "description": _trim(failure.description),
        "run_id": failure.run_id,
        "step": failure.step_key,
        "partition": failure.partition,
        "evaluated_at": _iso(failure.evaluated_at),
        "metadata": _trim(failure.metadata),
    }
    return facts


def _trim(value: Any, depth: int = 0) -> Any:
    """Metadata small enough for a prompt: a few sample rows, short texts, no deep nesting."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            limit = MAX_SAMPLE_ROWS if key in ("sample_failing_rows", "problems", "samples") else MAX_LIST_ITEMS
            if isinstance(item, list) and len(item) > limit:
                out[key] = [_trim(v, depth + 1) for v in item[:limit]]
                out[f"{key}_not_shown"] = len(item) - limit
            else:
                out[key] = _trim(item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_trim(v, depth + 1) for v in list(value)[:MAX_LIST_ITEMS]]
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + f"... ({len(value) - MAX_TEXT} more characters)"
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def _iso(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")


def recent_runs(instance, partitions: Sequence[str], run_ids: Sequence[str]) -> list[dict[str, Any]] | str:
    """The failing runs and the latest runs of the partition, newest first (or why unknown)."""
    if instance is None:
        return "not read (no Dagster instance given)"
    try:
        import dagster as dg

        records = {}
        for run_id in run_ids:
            for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=[run_id]), limit=1):
                records[record.dagster_run.run_id] = record
        for partition in partitions:
            for record in instance.get_run_records(filters=dg.RunsFilter(tags={PARTITION_TAG: partition}),
                                                   limit=RECENT_RUNS):
                records[record.dagster_run.run_id] = record
    except Exception as error:  # the report says what it could not read; it is still written
        return f"could not be read: {type(error).__name__}: {error}"
    rows = []
    for record in records.values():
        run = record.dagster_run
        rows.append({
            "run_id": run.run_id,
            "job": run.job_name,
            "status": run.status.value,
            "partition": run.tags.get(PARTITION_TAG),
            "started_at": _iso(record.start_time),
            "ended_at": _iso(record.end_time),
            "failing": run.run_id in run_ids,
        })
    rows.sort(key=lambda r: (r["started_at"] or "", r["run_id"]), reverse=True)
    return rows[: RECENT_RUNS + len(run_ids)]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The project's git revision when it is a checkout, else the installed package version."""
    from cei_assets.settings import PROJECT_ROOT

    try:
        completed = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
        if completed.returncode == 0 and completed.stdout.strip():
            return f"git {completed.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"cei {importlib_metadata.version('cei')}"
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def evidence_hash(redacted_evidence: dict[str, Any], model: str) -> str:
    """The cache key: what the model is shown (redacted evidence), the model and the prompt."""
    payload = canonical_json({"prompt_version": PROMPT_VERSION, "model": model, "evidence": redacted_evidence})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# The template writer


def template_report(evidence: dict[str, Any], *, fallback_reason: str | None = None) -> Report:
    """Every section of the report from the evidence alone."""
    return Report(
        summary=_summary(evidence),
        root_cause=_root_cause(evidence),
        evidence=_evidence_items(evidence),
        business_impact=_business_impact(evidence),
        recommended_actions=_actions(evidence),
        similar_incidents=_similar(evidence),
        routing=routing_section(evidence),
        written_by="template",
        model=None,
        fallback_reason=fallback_reason,
    )


def _date_words(evidence) -> str:
    partition = evidence.get("partition")
    if not partition:
        return ""
    return f" for {partition}" if isinstance(partition, str) else f" for {', '.join(partition)}"


def _few(items: Sequence[str], limit: int = 6) -> str:
    items = list(items)
    if not items:
        return "none"
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _summary(evidence) -> str:
    failures = evidence["failures"]
    impact = evidence["impact"]
    routing = evidence["routing"]
    halting = [f for f in failures if f["effect"] == "halts downstream"]
    checks = len(failures) + evidence.get("failures_not_shown", 0)
    roots = _few(impact["root_assets"]) if impact["root_assets"] else "an unknown part of the graph"
    what = f"{checks} failure(s) on {roots}{_date_words(evidence)}"
    if halting:
        effect = (f"a blocking failure halts {len(impact['halted'])} downstream asset(s)"
                  + (", the P&L among them" if "daily_pnl" in impact["halted"] else ""))
    else:
        effect = f"warnings only: nothing is halted, {len(impact['degraded'])} downstream asset(s) are degraded"
    return (f"{evidence['title']}. {what}; {effect}. Severity {routing['severity']}, "
            f"routed to {routing['team']}.")


def _root_cause(evidence) -> str:
    failures = evidence["failures"]
    impact = evidence["impact"]
    if not failures:
        return "No failure is recorded in the evidence."
    roots = set(impact["root_assets"])
    primary = next((f for f in failures if f["asset"] in roots), failures[0])
    if primary["kind"] == "check":
        text = _sentence(f"{primary['asset']} failed its check {primary['check']}{_date_words(evidence)}: "
                         f"{primary['description']}")
        if primary["crashed"]:
            text += " The check did not complete (its step crashed), so it counts as failed."
        if primary.get("rule"):
            text += f" Rule: `{primary['rule']}`."
        reason = (primary.get("metadata") or {}).get("reason")
        if reason:
            text += f" It {'blocks' if primary['effect'] == 'halts downstream' else 'only warns'} because {reason}."
    elif primary["kind"] == "step_error":
        error_class = (primary.get("metadata") or {}).get("error_class")
        text = _sentence(f"Step {primary['step']} failed{f' ({error_class})' if error_class else ''}: "
                         f"{primary['description']}")
    else:
        text = _sentence(primary["description"])
    cascade = sorted({f["asset"] for f in failures if f["asset"] and f["asset"] not in roots})
    if cascade:
        text += (f" The failures on {_few(cascade)} are downstream of {_few(sorted(roots))} and most likely "
                 "follow from it: fix the root first.")
    return text.strip()


def _sentence(text: str) -> str:
    text = (text or "").strip()
    return text if not text or text[-1] in ".!?)" else text + "."


def _evidence_items(evidence) -> list[str]:
    items = []
    for failure in evidence["failures"]:
        meta = failure.get("metadata") or {}
        line = f"{failure['check_id']} ({failure['effect']}, {failure['family']}): {failure['description']}"
        if isinstance(meta.get("failing_count"), int) and meta.get("total_count"):
            line += f" [{meta['failing_count']} of {meta['total_count']} rows fail]"
        samples = meta.get("sample_failing_rows") or []
        if samples and isinstance(samples[0], dict):
            line += "; first failing row: " + _row_words(samples[0])
        problems = meta.get("problems") or []
        if problems and isinstance(problems[0], dict) and problems[0].get("message"):
            line += f"; {problems[0]['message']}"
        items.append(line)
    if evidence.get("failures_not_shown"):
        items.append(f"{evidence['failures_not_shown']} more failure(s) of the same incident are not listed.")
    runs = evidence.get("recent_runs")
    if isinstance(runs, list) and runs:
        items.append("Recent runs: " + "; ".join(
            f"{r['run_id'][:8]} {r['job']} {r['status']}" + (f" started {r['started_at']}" if r.get("started_at") else "")
            for r in runs[:RECENT_RUNS]))
    items.append(f"Code version: {evidence.get('code_version')}.")
    return items


def _row_words(row: dict) -> str:
    where = ""
    if row.get("_source_file"):
        where = f"{str(row['_source_file']).rsplit('/', 1)[-1]} line {row.get('_source_line')}: "
    fields = ", ".join(f"{k} {v}" for k, v in row.items() if not str(k).startswith("_"))
    return where + fields


def _business_impact(evidence) -> str:
    impact = evidence["impact"]
    date = _date_words(evidence)
    parts = [
        f"Halted{date} (not built): {_few(impact['halted'], 12)}.",
        f"Degraded (built from data a check doubts): {_few(impact['degraded'], 12)}.",
        f"Unaffected: {impact.get('unaffected_count', len(impact['unaffected']))} asset(s).",
    ]
    if impact["business_processes"]:
        parts.append(f"Business processes it endangers: {', '.join(impact['business_processes'])}.")
    parts.append(f"Highest criticality touched: {impact['criticality']}.")
    if impact["critical_path"]:
        parts.append(f"Critical path to the P&L: {' -> '.join(impact['critical_path'])}.")
    else:
        parts.append("The P&L is not downstream of the failing assets.")
    owners = sorted({o for owners in impact["owners"].values() for o in owners})
    if owners:
        parts.append(f"Owners involved: {', '.join(owners)}.")
    return " ".join(parts)


_FAMILY_ACTIONS = {
    "landing_file": "Open the landing file named above: it must be present, UTF-8, with every required column and "
                    "values that parse; have the feed's owner resend it if it is wrong.",
    "pandera": "Read the failing rows (file and line) and have the feed corrected at its source.",
    "row_rule": "Read the failing rows (file and line) and correct them at the source, or have the feed resent.",
    "table_rule": "Look at the rows the rule flags (duplicates, ordering, unknown references) and correct the feed.",
    "market_data": "Compare the flagged marks or rates with the vendor and the day's last quotes; correct the file "
                   "if the price is wrong.",
    "reconciliation": "Open the date's breaks (`cei explain-pnl --date {date}`, table reconciliation.recon_breaks) "
                      "and settle them with the broker or the trade capture.",
    "dbt_test": "The books failed a consistency test: inspect the failing rows and their inputs before any P&L goes out.",
    "soda": "The books failed a data contract: inspect the failing rows and their inputs before any P&L goes out.",
    "step_error": "Read the step's error in the Dagster UI (run {run}); fix its cause (a missing file, the code, "
                  "the environment) before rerunning.",
    "run_failure": "Read why the run failed in the Dagster UI (run {run}) and start it again once the cause is gone.",
}


def _actions(evidence) -> list[str]:
    failures = evidence["failures"]
    routing = evidence["routing"]
    partition = evidence.get("partition") if isinstance(evidence.get("partition"), str) else None
    date = partition or "<date>"
    actions = []
    for failure in failures:
        template = _FAMILY_ACTIONS.get(failure["family"])
        if template:
            action = template.format(date=date, run=(failure.get("run_id") or "")[:8])
            if action not in actions:
                actions.append(action)
    if routing.get("runbook"):
        actions.append(f"Follow the runbook: {routing['runbook']}.")
    for similar in evidence["similar_incidents"][:2]:
        if similar.get("resolution"):
            actions.append(f"Incident #{similar['id']} looked the same; it was resolved"
                           f"{' by ' + similar['resolved_by'] if similar.get('resolved_by') else ''}: "
                           f"{similar['resolution']}")
    blocking = [f for f in failures if f["effect"] == "halts downstream" and f["kind"] == "check"]
    if partition:
        actions.append(f"Once the data is corrected, rerun the date: `cei run --date {partition}`.")
    if blocking and partition:
        first = blocking[0]
        actions.append(
            f"Only if the data is right after all: release the check for this date with `cei override --date "
            f"{partition} --check {first['check']} --asset {first['asset']} --reason \"...\"` (recorded with who and why)."
        )
    return actions or ["Look at the failures listed above in the Dagster UI."]


def _similar(evidence) -> str:
    similar = evidence["similar_incidents"]
    if not similar:
        return "No similar past incident in the incident store."
    lines = []
    for s in similar:
        line = f"#{s['id']} {s['title']} (similarity {s['score']:.2f})"
        if s.get("resolution"):
            line += f": resolved{' by ' + s['resolved_by'] if s.get('resolved_by') else ''}: {s['resolution']}"
        else:
            line += ": not resolved yet"
        lines.append(line)
    return "\n".join(lines)


def routing_section(evidence) -> str:
    """Routing in words, from the routing decided by code (never from a model)."""
    routing = evidence["routing"]
    text = (f"Severity {routing['severity']}. Team {routing['team']}"
            f"{', Slack ' + routing['slack_channel'] if routing.get('slack_channel') else ''}; "
            f"on call: {routing.get('oncall') or 'no one configured'}; "
            f"suggested assignee: {routing.get('suggested_assignee') or 'none from history'}; "
            f"runbook: {routing.get('runbook') or 'none configured'}.")
    if routing.get("reasons"):
        text += " Why: " + "; ".join(routing["reasons"]) + "."
    return text


# --------------------------------------------------------------------------------------------
# The LLM writer, with its cache, budget and audit


def write_report(
    evidence: dict[str, Any],
    *,
    store: ReportStore,
    settings: llm.LLMSettings | None,
    redaction: RedactionConfig,
    known_accounts: Sequence[str] = (),
    settings_error: str | None = None,
    deadline: float | None = None,
) -> Report:
    """The report: the LLM's words when it can give them, the template's otherwise. Never raises
    for an LLM problem; every attempt is audited as ``llm_call``.

    ``deadline`` (``time.monotonic()`` seconds) bounds the LLM call, retries included, for a
    caller with a time limit of its own (the sensor's evaluation).
    """
    redactor = Redactor.for_evidence(evidence, redaction, known_accounts)
    redacted = redactor.redact(evidence)
    model = settings.model if settings is not None else llm.DEFAULT_MODEL
    key = evidence_hash(redacted, model)
    call = {"model": model, "evidence_hash": key, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
            "cache_hit": False, "fallback_reason": None}

    def fallback(reason: str, **consumed) -> Report:
        store.audit("llm_call", **{**call, **consumed, "fallback_reason": reason})
        return template_report(evidence, fallback_reason=reason)

    if settings is None:
        return fallback(f"invalid LLM configuration: {settings_error or 'no settings'}")

    cached = store.get_report(key)
    if cached is not None:
        try:
            sections = llm.ReportSections.model_validate({k: v for k, v in cached.items() if k in llm.ReportSections.model_fields})
        except Exception:
            sections = None  # an unreadable cache entry is a miss
        if sections is not None:
            store.audit("llm_call", **{**call, "cache_hit": True})
            return _llm_report(sections, evidence, redactor, model=cached.get("model") or model)

    if not settings.api_key:
        return fallback("no API key (ANTHROPIC_API_KEY is not set)")
    try:
        price = llm.price_of(settings)
    except llm.LLMUnavailable as error:
        return fallback(error.reason)
    evidence_text = json.dumps(redacted, indent=1, sort_keys=True, ensure_ascii=False, default=str)
    spent = store.llm_spend_today()
    worst_case = price.cost(llm.estimate_input_tokens(evidence_text), settings.max_output_tokens)
    if spent + worst_case > settings.daily_budget_usd:
        return fallback(f"over the daily LLM budget: ${spent:.4f} spent today (UTC), this call could cost up to "
                        f"${worst_case:.4f}, budget ${settings.daily_budget_usd:.2f} (CEI_LLM_DAILY_BUDGET_USD)")
    try:
        answer = llm.ask(settings, evidence_text, decided_severity=evidence["routing"].get("severity"),
                         deadline=deadline)
    except llm.LLMUnavailable as error:
        return fallback(error.reason, input_tokens=error.input_tokens, output_tokens=error.output_tokens,
                        cost_usd=price.cost(error.input_tokens, error.output_tokens), message_id=error.message_id)

    cost = price.cost(answer.input_tokens, answer.output_tokens)
    store.put_report(key, {**answer.sections.model_dump(), "model": answer.model}, answer.model)
    store.audit("llm_call", **{**call, "model": answer.model, "input_tokens": answer.input_tokens,
                               "output_tokens": answer.output_tokens, "cost_usd": cost, "message_id": answer.message_id})
    return _llm_report(answer.sections, evidence, redactor, model=answer.model)


def _llm_report(sections: llm.ReportSections, evidence: dict[str, Any], redactor: Redactor, *, model: str) -> Report:
    words = redactor.restore(sections.model_dump())  # the report stays in the firm: real values back
    return Report(
        summary=words["summary"],
        root_cause=words["root_cause"],
        evidence=list(words["evidence"]),
        business_impact=words["business_impact"],
        recommended_actions=list(words["recommended_actions"]),
        similar_incidents=words["similar_incidents"],
        routing=routing_section(evidence),
        written_by="llm",
        model=model,
    )
