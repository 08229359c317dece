"""Running a table's rules on the warehouse: one scan for all row rules, one query per table rule."""

from __future__ import annotations

import dataclasses

import duckdb

from asset_checks.outcome import CheckOutcome, list_for_sentence
from asset_checks.rule_types import TableContext, _quote_ident
from asset_checks.vocabulary import RULE_TYPES
from asset_checks.rules import Rule

SAMPLE_LIMIT = 20
# Columns that say who or what a failing row concerns, reported as "affected".
_AFFECTED_COLUMNS = ("symbol", "account", "vendor", "pair", "currency")


def table_context(conn: duckdb.DuckDBPyConnection, table: str, relation: str, business_date,
                  key_columns: tuple[str, ...]) -> TableContext:
    schema, _, name = relation.partition(".")
    columns = tuple(
        r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [schema, name],
        ).fetchall()
    )
    partitioned = "business_date" in columns
    return TableContext(
        table=table, relation=relation, business_date=business_date if partitioned else None,
        key_columns=key_columns, columns=columns,
    )


def run_rules(conn: duckdb.DuckDBPyConnection, ctx: TableContext, rules: list[Rule]) -> list[CheckOutcome]:
    if not ctx.columns:
        return [
            _outcome(rule, False, 0, 0, f"{ctx.relation} does not exist in the warehouse", [], {})
            for rule in rules
        ]
    outcomes: dict[str, CheckOutcome] = {}
    row_rules = [r for r in rules if RULE_TYPES[r.type].kind == "row"]
    if row_rules:
        outcomes.update(_run_row_rules(conn, ctx, row_rules))
    for rule in rules:
        if RULE_TYPES[rule.type].kind == "table":
            try:
                passed, failing, total, text, samples, affected = RULE_TYPES[rule.type].evaluate(rule, ctx, conn)
            except duckdb.Error as error:
                passed, failing, total, text, samples, affected = False, 0, 0, f"the rule could not run: {error}", [], {}
            outcomes[rule.name] = _outcome(rule, passed, failing, total, text, samples, affected)
    return [outcomes[r.name] for r in rules]


def _row_conditions(ctx: TableContext, rules: list[Rule]) -> list[tuple[Rule, str, str]]:
    conditions: list[tuple[Rule, str, str]] = []  # (rule, label, sql)
    for rule in rules:
        for label, sql in RULE_TYPES[rule.type].conditions(rule, ctx).items():
            conditions.append((rule, label, sql))
    return conditions


def _run_row_rules(conn, ctx: TableContext, rules: list[Rule]) -> dict[str, CheckOutcome]:
    conditions = _row_conditions(ctx, rules)
    selects = ", ".join(f"count_if({sql}) AS c{i}" for i, (_, _, sql) in enumerate(conditions))
    try:
        counts = conn.execute(f"SELECT count(*), {selects} FROM {ctx.relation} WHERE {ctx.where}", ctx.params).fetchone()
    except duckdb.Error as error:
        return {r.name: _outcome(r, False, 0, 0, f"the rules could not run on {ctx.relation}: {error}", [], {}) for r in rules}
    return _judge_row_rules(conn, ctx, rules, conditions, counts)


def _judge_row_rules(conn, ctx: TableContext, rules: list[Rule], conditions, counts) -> dict[str, CheckOutcome]:
    total = counts[0] or 0
    by_rule: dict[str, dict[str, int]] = {}
    for (rule, label, _), count in zip(conditions, counts[1:]):
        by_rule.setdefault(rule.name, {})[label] = int(count or 0)  # count_if is NULL on no rows

    outcomes = {}
    for rule in rules:
        rule_type = RULE_TYPES[rule.type]
        passed, failing, text, threshold = rule_type.judge(rule, ctx, by_rule[rule.name], total)
        samples, affected = [], {}
        if not passed:
            condition = " OR ".join(f"({sql})" for r, _, sql in conditions if r.name == rule.name)
            samples, affected = _sample(conn, ctx, rule_type.columns_of(rule), condition)
            if affected.get("symbol"):
                text += f"; symbols: {list_for_sentence(affected['symbol'])}"
            elif affected.get("account"):
                text += f"; accounts: {list_for_sentence(affected['account'])}"
        outcome = _outcome(rule, passed, failing, total, text, samples, affected)
        outcome.threshold = threshold
        outcomes[rule.name] = outcome
    return outcomes


def run_rules_over_dates(conn: duckdb.DuckDBPyConnection, ctx: TableContext, rules: list[Rule],
                         dates) -> dict:
    """What ``run_rules`` gives date by date, for many trading dates of a partitioned table at once:
    one scan grouped by date for all row rules, one call for each table rule that can judge many
    dates in one query (``evaluate_many(rule, ctx, conn, dates) -> {date: result}``), the other
    table rules date by date. ``ctx`` is any date's context of the table."""
    dates = sorted(set(dates))
    per_date = {d: dataclasses.replace(ctx, business_date=d) for d in dates}
    if not ctx.columns or ctx.business_date is None or not dates:
        return {d: run_rules(conn, per_date[d], rules) for d in dates}
    outcomes: dict = {d: {} for d in dates}
    row_rules = [r for r in rules if RULE_TYPES[r.type].kind == "row"]
    if row_rules:
        conditions = _row_conditions(ctx, row_rules)
        selects = ", ".join(f"count_if({sql}) AS c{i}" for i, (_, _, sql) in enumerate(conditions))
        try:
            rows = conn.execute(
                f"SELECT business_date, count(*), {selects} FROM {ctx.relation} "
                f"WHERE business_date BETWEEN $first AND $last GROUP BY business_date",
                {"first": dates[0], "last": dates[-1]},
            ).fetchall()
            by_date = {r[0]: r[1:] for r in rows}
            for d in dates:
                counts = by_date.get(d, (0,) + (0,) * len(conditions))
                outcomes[d].update(_judge_row_rules(conn, per_date[d], row_rules, conditions, counts))
        except duckdb.Error:
            for d in dates:
                outcomes[d].update(_run_row_rules(conn, per_date[d], row_rules))
    for rule in rules:
        rule_type = RULE_TYPES[rule.type]
        if rule_type.kind != "table":
            continue
        many = getattr(rule_type, "evaluate_many", None)
        results = None
        if many is not None:
            try:
                results = many(rule, ctx, conn, dates)
            except duckdb.Error:
                results = None  # judged date by date below, each failure with its own message
        for d in dates:
            if results is not None:
                result = results[d]
            else:
                try:
                    result = rule_type.evaluate(rule, per_date[d], conn)
                except duckdb.Error as error:
                    result = (False, 0, 0, f"the rule could not run: {error}", [], {})
            outcomes[d][rule.name] = _outcome(rule, *result)
    return {d: [outcomes[d][r.name] for r in rules] for d in dates}


def _sample(conn, ctx: TableContext, rule_columns: list[str], condition: str) -> tuple[list[dict], dict]:
    wanted = list(dict.fromkeys(
        [c for c in ("business_date",) if c in ctx.columns]
        + [c for c in ctx.key_columns if c in ctx.columns]
        + [c for c in _AFFECTED_COLUMNS if c in ctx.columns]
        + [c for c in rule_columns if c in ctx.columns]
        + [c for c in ("_source_file", "_source_line") if c in ctx.columns]
    ))
    column_sql = ", ".join(_quote_ident(c) for c in wanted) or "*"
    order = "ORDER BY _source_line" if "_source_line" in ctx.columns else ""
    rows = conn.execute(
        f"SELECT {column_sql} FROM {ctx.relation} WHERE {ctx.where} AND ({condition}) {order} LIMIT {SAMPLE_LIMIT}",
        ctx.params,
    ).fetchall()
    samples = [dict(zip(wanted, r)) for r in rows]
    affected = {}
    for column in _AFFECTED_COLUMNS:
        if column in ctx.columns:
            values = conn.execute(
                f"SELECT DISTINCT {_quote_ident(column)} FROM {ctx.relation} WHERE {ctx.where} AND ({condition}) "
                f"ORDER BY 1 LIMIT 50",
                ctx.params,
            ).fetchall()
            affected[column] = [str(v[0]) for v in values if v[0] is not None]
    return samples, {k: v for k, v in affected.items() if v}


def _outcome(rule: Rule, passed, failing, total, text, samples, affected) -> CheckOutcome:
    return CheckOutcome(
        check_name=rule.name,
        passed=bool(passed),
        blocking=rule.blocking,
        severity=rule.severity,
        rule=rule.as_written,
        description=text[0].upper() + text[1:] if text else text,
        engine="sql",
        threshold=rule.param,
        failing_count=int(failing or 0),
        total_count=int(total or 0),
        sample_rows=samples,
        affected=affected,
        reason=rule.reason,
    )
