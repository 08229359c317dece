"""The rule files as Dagster asset checks: one check per rule, one step per table.

Every rule shows in the UI on the asset it guards, with its blocking flag; a failed blocking
check stops everything downstream of that asset in the run (Dagster's blocking checks) and in
later runs for the same trading date (see ``gating``).
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from cei_assets.check_specs import check_spec

from asset_checks.engine import run_rules, table_context
from asset_checks.outcome import CheckOutcome
from asset_checks.rules import Rule, load_rules
from asset_checks.vocabulary import RULE_TYPES
from cei_assets.landing import DATASETS_BY_NAME, QUOTES
from cei_assets.resources import WarehouseResource
from cei_assets.trading_calendar import trading_day_partitions

# Models of the books that rules may target, with the keys that identify their rows.
BOOKS_TABLES: dict[str, tuple[str, ...]] = {
    "positions": ("account", "symbol"),
    "cash_balances": ("account", "currency"),
    "market_values": ("account", "symbol"),
    "daily_pnl": ("account", "symbol"),
    "fx_rates_usd": ("currency",),
}


def target_of(table: str) -> tuple[dg.AssetKey, str, tuple[str, ...], bool]:
    """(asset key, warehouse relation, key columns, partitioned) of a rule file's table."""
    if table in DATASETS_BY_NAME:
        dataset = DATASETS_BY_NAME[table]
        keys = ("vendor", "symbol", "ts") if dataset is QUOTES else dataset.key
        return dg.AssetKey(["landing", table]), f"raw.{table}", keys, dataset.daily
    if table in BOOKS_TABLES:
        return dg.AssetKey([table]), f"books.{table}", BOOKS_TABLES[table], True
    raise ValueError(f"rules name an unknown table {table!r}: a landing dataset or one of {', '.join(BOOKS_TABLES)}")


def outcome_to_result(asset_key: dg.AssetKey, outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=outcome.check_name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
        description=outcome.description,
        metadata=outcome.metadata(),
    )


def _reads(rule: Rule, own_key: dg.AssetKey) -> list[dg.AssetKey]:
    """The other tables a rule reads, so its check waits for them (e.g. marks against quotes)."""
    tables = list(getattr(RULE_TYPES[rule.type], "reads", ()))
    if rule.type == "referential":
        relation = rule.param["references"].rpartition(".")[0]
        tables.append(relation.split(".")[-1])
    keys = [target_of(t)[0] for t in dict.fromkeys(tables)]
    return [k for k in keys if k != own_key]


def _spec(asset_key: dg.AssetKey, rule: Rule, partitions_def) -> dg.AssetCheckSpec:
    verdict = "Blocks downstream" if rule.blocking else "Warns only"
    why = f" {verdict}: {rule.reason}" if rule.reason else f" {verdict}."
    return check_spec(
        rule.name,
        asset=asset_key,
        additional_deps=_reads(rule, asset_key),
        blocking=rule.blocking,
        partitions_def=partitions_def,
        description=f"{rule.as_written}.{why}",
        metadata={"rule": rule.as_written, "severity": rule.severity, "rule_source": rule.source},
    )


def _build_table_checks(table: str, rules: Sequence[Rule]) -> dg.AssetChecksDefinition:
    asset_key, relation, key_columns, partitioned = target_of(table)
    partitions_def = trading_day_partitions() if partitioned else None
    specs = [_spec(asset_key, rule, partitions_def) for rule in rules]

    @dg.multi_asset_check(
        name=f"{table}_rules",
        specs=specs,
        can_subset=True,
        description=f"The rules of asset_checks/rules for {table}, in one scan of {relation}.",
    )
    def _table_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        business_date = dt.date.fromisoformat(context.partition_key) if partitioned else None
        selected = {key.name for key in context.selected_asset_check_keys}
        chosen = [r for r in rules if r.name in selected]
        with warehouse.read() as conn:
            ctx = table_context(conn, table, relation, business_date, key_columns)
            outcomes = run_rules(conn, ctx, chosen)
        for outcome in outcomes:
            if not outcome.passed:
                log = context.log.error if outcome.blocking else context.log.warning
                log(f"{table}.{outcome.check_name}: {outcome.description}")
            yield outcome_to_result(asset_key, outcome)

    return _table_checks


def build_rule_checks() -> list[dg.AssetChecksDefinition]:
    return [_build_table_checks(table, rules) for table, rules in load_rules().items()]
