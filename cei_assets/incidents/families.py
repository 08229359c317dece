"""What kind of check a failure comes from: its rule type and its check family.

The family chooses the runbook (a file that did not load is handled differently from a
reconciliation break) and is part of a failure's signature. Both are read from the result's
own metadata (``rule`` and ``engine``, see ``asset_checks.outcome``) and, for a check whose step
crashed before it could say anything, from the check's spec in the asset graph.
"""

from __future__ import annotations

from typing import Any

from cei_assets.incidents.facts import Failure

LANDING_FILE = "landing_file"
PANDERA = "pandera"
SODA = "soda"
DBT_TEST = "dbt_test"
RECONCILIATION = "reconciliation"
MARKET_DATA = "market_data"
ROW_RULE = "row_rule"
TABLE_RULE = "table_rule"
STEP_ERROR = "step_error"
RUN_FAILURE = "run_failure"

FAMILIES = (LANDING_FILE, PANDERA, SODA, DBT_TEST, RECONCILIATION, MARKET_DATA, ROW_RULE, TABLE_RULE,
            STEP_ERROR, RUN_FAILURE)

# The landing assets' own check (cei_assets.assets.landing.LANDING_FILE_CHECK; not imported: that
# module builds assets and reads the dbt manifest on import).
_LANDING_FILE_CHECK = "landing_file"


def check_spec_metadata(failure: Failure, asset_graph) -> dict[str, Any]:
    """The metadata declared on the failed check's spec (``rule``, ``severity``), or {}."""
    if asset_graph is None or failure.kind != "check" or not failure.asset_key or not failure.check_name:
        return {}
    import dagster as dg

    key = dg.AssetCheckKey(dg.AssetKey.from_user_string(failure.asset_key), failure.check_name)
    try:
        if key not in asset_graph.asset_check_keys:
            return {}
        spec = asset_graph.get_check_spec(key)
    except Exception:  # an asset graph without this check's spec: the result's metadata must do
        return {}
    return {k: getattr(v, "value", v) for k, v in (spec.metadata or {}).items()}


def rule_written(failure: Failure, asset_graph=None) -> str | None:
    """The rule as written (``value_range: {column: fee, min: 0}``), when the check has one."""
    rule = failure.metadata.get("rule") or check_spec_metadata(failure, asset_graph).get("rule")
    return str(rule) if rule else None


def rule_type(failure: Failure, asset_graph=None) -> str | None:
    """The rule's type: ``price_move``, ``null_tolerance``, ``soda:duplicate``, ``pandera``,
    ``dbt``, ``landing_file``; None for failures that are not checks."""
    if failure.kind != "check":
        return None
    if failure.check_name == _LANDING_FILE_CHECK:
        return LANDING_FILE
    rule = rule_written(failure, asset_graph)
    engine = failure.metadata.get("engine")
    if rule:
        head = rule.strip()
        if head.startswith("soda "):
            return "soda:" + head.split()[1]
        if head.startswith("pandera ") or engine == PANDERA:
            return PANDERA
        return head.split(":", 1)[0].strip() or None
    if engine == PANDERA or failure.check_name == "pandera_schema":
        return PANDERA
    if engine == SODA or (failure.check_name or "").startswith("soda_"):
        return "soda"
    return "dbt"  # dbt tests carry no rule text: their result has a failed row count only


def check_family(failure: Failure, asset_graph=None) -> str:
    """The check family of a failure, one of ``FAMILIES``."""
    if failure.kind == "step_error":
        return STEP_ERROR
    if failure.kind == "run_failure":
        return RUN_FAILURE
    kind = rule_type(failure, asset_graph)
    if kind == LANDING_FILE:
        return LANDING_FILE
    if kind == PANDERA:
        return PANDERA
    if kind and kind.startswith("soda"):
        return SODA
    if kind == "dbt":
        # The reconciliation models' tests are the reconciliation; the books' tests are dbt tests.
        return RECONCILIATION if (failure.asset_key or "").startswith("recon_") else DBT_TEST
    from asset_checks.vocabulary import RULE_TYPES
    from asset_checks.market_rules import MARKET_RULE_TYPES

    if kind in MARKET_RULE_TYPES:
        return MARKET_DATA
    if kind in RULE_TYPES:
        return ROW_RULE if RULE_TYPES[kind].kind == "row" else TABLE_RULE
    return ROW_RULE if (failure.asset_key or "").startswith("landing/") else DBT_TEST
