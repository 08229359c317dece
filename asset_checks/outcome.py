"""One result shape for every check, whatever engine ran it (SQL, pandera, Soda, dbt)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from typing import Any

MAX_SAMPLE_ROWS = 20


@dataclasses.dataclass
class CheckOutcome:
    check_name: str
    passed: bool
    blocking: bool
    severity: str  # "ERROR" or "WARN"
    rule: str  # the rule as written, e.g. "null_tolerance: 0.0%"
    description: str  # one sentence a person can act on
    engine: str = "sql"
    threshold: Any = None
    failing_count: int = 0
    total_count: int = 0
    sample_rows: list[dict] = dataclasses.field(default_factory=list)
    affected: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # e.g. {"symbol": [...]}
    reason: str | None = None  # why this rule blocks or only warns
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def failing_rate(self) -> float:
        return self.failing_count / self.total_count if self.total_count else (1.0 if self.failing_count else 0.0)

    def metadata(self) -> dict[str, Any]:
        """Metadata for the Dagster check result: what a responder needs to act."""
        meta: dict[str, Any] = {
            "rule": self.rule,
            "engine": self.engine,
            "blocking": self.blocking,
            "failing_count": int(self.failing_count),
            "total_count": int(self.total_count),
            "failing_rate": round(float(self.failing_rate), 6),
        }
        if self.threshold is not None:
            meta["threshold"] = plain(self.threshold)
        if self.sample_rows:
            meta["sample_failing_rows"] = plain(self.sample_rows[:MAX_SAMPLE_ROWS])
        if self.affected:
            meta["affected"] = plain(self.affected)
        if self.reason:
            meta["reason"] = self.reason
        for key, value in self.extra.items():
            meta[key] = plain(value)
        return meta


def plain(value: Any) -> Any:
    """JSON-friendly values for metadata: decimals, dates and timestamps as plain values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return value


def list_for_sentence(items: list[str], limit: int = 5) -> str:
    items = [str(i) for i in items]
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
