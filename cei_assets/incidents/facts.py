"""The shapes the incident parts exchange. Plain dataclasses, JSON-serialisable with ``asdict``.

Facts are gathered deterministically (from the Dagster instance and asset graph and the
incident store); everything that decides (severity, routing, what is halted) is computed from
them by code. The report writer only turns them into words.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

FailureKind = Literal["check", "step_error", "run_failure"]
Severity = Literal["P1", "P2", "P3", "P4"]


@dataclass(frozen=True)
class Failure:
    """One failed check evaluation, or a run that failed for a reason other than a check.

    ``asset_key`` is the user string of the asset (``daily_pnl``, ``landing/quotes``).
    A check whose step crashed before evaluating is a ``check`` failure with ``crashed=True``.
    """

    kind: FailureKind
    run_id: str
    partition: str | None
    asset_key: str | None
    check_name: str | None
    blocking: bool
    warn_only: bool  # severity WARN: degrades, never halts
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
    evaluated_at: float = 0.0  # unix seconds
    step_key: str | None = None
    crashed: bool = False

    @property
    def check_id(self) -> str:
        """``asset/check`` for checks, ``run:<step or run>`` for other failures."""
        if self.kind == "check":
            return f"{self.asset_key}/{self.check_name}"
        return f"{self.kind}:{self.step_key or self.run_id}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Impact:
    """What a group of failures does to the rest of the asset graph, for one partition."""

    root_assets: list[str]  # the failing assets no other failing asset is upstream of
    halted: list[str]  # downstream of a failed blocking check (not built for the partition)
    degraded: list[str]  # downstream of a warning only
    unaffected: list[str]
    owners: dict[str, list[str]]  # asset -> Dagster owners (team:..., emails)
    teams: list[str]  # owning teams of the root assets first, then of the halted
    business_processes: list[str]  # from asset metadata cei/business_processes
    criticality: str  # the highest cei/criticality among root, halted and degraded assets
    critical_path: list[str]  # root asset ... daily_pnl, empty when P&L is not downstream

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Routing:
    team: str
    severity: Severity
    oncall: str | None
    runbook: str | None
    slack_channel: str | None
    suggested_assignee: str | None
    reasons: list[str] = field(default_factory=list)  # why this severity / team, in words

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PastIncident:
    """What the similarity search and the assignee suggestion know of an earlier incident."""

    id: int
    title: str
    check_ids: list[str]
    assets: list[str]
    signature: str
    status: str
    resolved_by: str | None
    resolution: str | None
    opened_at: float
    resolved_at: float | None


@dataclass
class SimilarIncident:
    id: int
    title: str
    score: float  # 0..1
    resolved_by: str | None
    resolution: str | None


@dataclass
class Report:
    """The report a responder reads. Same sections whoever wrote it."""

    summary: str
    root_cause: str
    evidence: list[str]
    business_impact: str
    recommended_actions: list[str]
    similar_incidents: str
    routing: str
    written_by: Literal["llm", "template"]
    model: str | None = None
    fallback_reason: str | None = None  # why the template wrote it (no key, timeout, ...)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_markdown(self) -> str:
        lines = ["## Summary", self.summary, "", "## Likely root cause", self.root_cause, ""]
        if self.evidence:
            lines += ["Evidence:", *[f"- {item}" for item in self.evidence], ""]
        lines += ["## Business impact", self.business_impact, "", "## Recommended actions"]
        lines += [f"{n}. {action}" for n, action in enumerate(self.recommended_actions, 1)]
        lines += ["", "## Similar incidents", self.similar_incidents, "", "## Routing", self.routing]
        source = f"LLM ({self.model})" if self.written_by == "llm" else "template"
        if self.fallback_reason:
            source += f"; LLM not used: {self.fallback_reason}"
        lines += ["", f"_Written by {source}._"]
        return "\n".join(lines)
