"""Similar past incidents: a failure's signature and a ranked retrieval over the incident store.

A signature describes the *shape* of a failure, never its volatile numbers: which check, on
which asset, of which rule type and family, which metadata the result carried, which columns
failed and what kind of problem it was. "3 of 53 executions rows have fee below 0" and "7 of
61 ..." on another day have the same signature. It is a sorted list of tokens in one string,
stored with the incident, so retrieval needs nothing but the store: it works offline.

Ranking is a weighted Jaccard similarity over the check ids, the assets and the signature
tokens; ties go to resolved incidents (they say what was done), then the most recent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cei_assets.incidents.facts import Failure, PastIncident, SimilarIncident
from cei_assets.incidents.families import check_family, rule_type

# Metadata whose string values name the failure's shape (a column, a kind of problem), not
# its size. Numbers are never part of a signature.
_SHAPE_VALUE_KEYS = {"column", "columns", "kind", "class", "classes", "flag", "flags", "category", "categories",
                     "error_class", "problem", "break_type", "vendor"}
# Metadata that says where or when, which changes every day.
_VOLATILE_KEYS = {"business_date", "files", "file", "rows", "job_name", "_source_file", "_source_line", "lines",
                  "samples", "message", "query"}
_MAX_TOKEN_LENGTH = 80

WEIGHTS = {"checks": 0.5, "assets": 0.2, "signature": 0.3}
MIN_SCORE = 0.2
TOP = 5


def failure_tokens(failure: Failure, asset_graph=None) -> set[str]:
    tokens = {f"kind:{failure.kind}", f"family:{check_family(failure, asset_graph)}"}
    if failure.kind == "check":
        tokens.add(f"check:{failure.check_id}")
        tokens.add(f"check_name:{failure.check_name}")
    elif failure.step_key:
        tokens.add(f"step:{failure.step_key}")
    if failure.asset_key:
        tokens.add(f"asset:{failure.asset_key}")
    kind = rule_type(failure, asset_graph)
    if kind:
        tokens.add(f"rule:{kind}")
    tokens.add("effect:halts" if failure.blocking and not failure.warn_only else "effect:warns")
    if failure.crashed:
        tokens.add("crashed")
    tokens |= _shape_tokens(failure.metadata)
    return {t for t in tokens if len(t) <= _MAX_TOKEN_LENGTH and " " not in t}


def _shape_tokens(metadata: dict[str, Any]) -> set[str]:
    tokens: set[str] = set()
    for key, value in metadata.items():
        if key in _VOLATILE_KEYS or key.startswith("dagster"):
            continue
        tokens.add(f"meta:{key}")
        if key in ("sample_failing_rows",) and isinstance(value, list):
            # The failing rows' columns say which fields were wrong, whatever their values.
            for row in value:
                if isinstance(row, dict):
                    tokens |= {f"col:{c}" for c in row if c not in _VOLATILE_KEYS}
        elif key == "affected" and isinstance(value, dict):
            tokens |= {f"affected:{k}" for k in value}
        elif key == "threshold" and isinstance(value, dict):
            tokens |= {f"col:{v}" for k, v in value.items() if k in ("column", "columns") and isinstance(v, str)}
        elif key == "problems" and isinstance(value, list):
            for problem in value:
                if isinstance(problem, dict):
                    tokens |= _problem_tokens(problem)
        tokens |= _values_of_shape(key, value)
    return tokens


def _problem_tokens(problem: dict) -> set[str]:
    tokens = set()
    if problem.get("kind"):
        tokens.add(f"problem:{problem['kind']}")
    if problem.get("column"):
        tokens.add(f"col:{problem['column']}")
    return tokens


def _values_of_shape(key: str, value: Any) -> set[str]:
    if key not in _SHAPE_VALUE_KEYS:
        if isinstance(value, dict):
            return set().union(*(_values_of_shape(k, v) for k, v in value.items())) if value else set()
        return set()
    values = value if isinstance(value, (list, tuple)) else [value]
    name = "col" if key in ("column", "columns") else key
    return {f"{name}:{v}" for v in values if isinstance(v, str) and v}


def failure_signature(failures: Sequence[Failure], asset_graph=None) -> str:
    """The group's signature: the union of its failures' tokens, sorted, space-separated."""
    tokens: set[str] = set()
    for failure in failures:
        tokens |= failure_tokens(failure, asset_graph)
    return " ".join(sorted(tokens))


def _jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def similarity(query_checks: Iterable[str], query_assets: Iterable[str], query_signature: str,
               past: PastIncident) -> float:
    """Weighted Jaccard similarity, 0..1."""
    score = (
        WEIGHTS["checks"] * _jaccard(set(query_checks), set(past.check_ids))
        + WEIGHTS["assets"] * _jaccard(set(query_assets), set(past.assets))
        + WEIGHTS["signature"] * _jaccard(set(query_signature.split()), set((past.signature or "").split()))
    )
    return round(score / sum(WEIGHTS.values()), 4)


def rank_similar(
    failures: Sequence[Failure],
    history: Iterable[PastIncident],
    *,
    signature: str | None = None,
    asset_graph=None,
    top: int = TOP,
    min_score: float = MIN_SCORE,
) -> list[SimilarIncident]:
    """The past incidents most like these failures, best first, with how each was resolved."""
    signature = signature if signature is not None else failure_signature(failures, asset_graph)
    checks = {f.check_id for f in failures}
    assets = {f.asset_key for f in failures if f.asset_key}
    scored = []
    for past in history:
        score = similarity(checks, assets, signature, past)
        if score >= min_score:
            scored.append((score, past))
    scored.sort(key=lambda sp: (-sp[0], sp[1].resolved_at is None, -(sp[1].opened_at or 0.0), sp[1].id))
    return [
        SimilarIncident(id=past.id, title=past.title, score=score, resolved_by=past.resolved_by,
                        resolution=past.resolution)
        for score, past in scored[:top]
    ]
