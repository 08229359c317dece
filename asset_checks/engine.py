"""Running a table's rules on the warehouse: one scan for all row rules (and one to sample the failing
ones), one query per table rule, and what several table rules read alike computed once."""

from __future__ import annotations

import dataclasses

import duckdb

from asset_checks.outcome import CheckOutcome, list_for_sentence
from asset_checks.rule_types import SharedRelations, TableContext, _quote_ident, _sql_string
from asset_checks.vocabulary import RULE_TYPES
from asset_checks.rules import Rule

SAMPLE_LIMIT = 20
_AFFECTED_LIMIT = 50
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
    outcomes.update(_run_table_rules(conn, ctx, [r for r in rules if RULE_TYPES[r.type].kind == "table"]))
    return [outcomes[r.name] for r in rules]


def _run_table_rules(conn, ctx: TableContext, rules: list[Rule]) -> dict[str, CheckOutcome]:
    """Each table rule's own query; what several of them read alike (their ``shared_needs``, e.g. the
    quotes per symbol and 5-minute bucket) is computed once for all of them."""
    shared = SharedRelations(conn, {key for r in rules for key in RULE_TYPES[r.type].shared_needs(r, ctx)})
    ctx = dataclasses.replace(ctx, shared=shared)
    outcomes = {}
    try:
        for rule in rules:
            try:
                result = RULE_TYPES[rule.type].evaluate(rule, ctx, conn)
            except duckdb.Error as error:
                result = (False, 0, 0, f"the rule could not run: {error}", [], {})
            outcomes[rule.name] = _outcome(rule, *result)
    finally:
        shared.close()
    return outcomes


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

    judged = {}
    for rule in rules:
        rule_type = RULE_TYPES[rule.type]
        judged[rule.name] = rule_type.judge(rule, ctx, by_rule[rule.name], total)
    failing = [r for r in rules if not judged[r.name][0]]
    evidence = _sample(conn, ctx, [
        (RULE_TYPES[r.type].columns_of(r), " OR ".join(f"({sql})" for x, _, sql in conditions if x.name == r.name))
        for r in failing
    ])
    found = dict(zip([r.name for r in failing], evidence))

    outcomes = {}
    for rule in rules:
        passed, failing_count, text, threshold = judged[rule.name]
        samples, affected = found.get(rule.name, ([], {}))
        if affected.get("symbol"):
            text += f"; symbols: {list_for_sentence(affected['symbol'])}"
        elif affected.get("account"):
            text += f"; accounts: {list_for_sentence(affected['account'])}"
        outcome = _outcome(rule, passed, failing_count, total, text, samples, affected)
        outcome.threshold = threshold
        outcomes[rule.name] = outcome
    return outcomes


def run_rules_over_dates(conn: duckdb.DuckDBPyConnection, ctx: TableContext, rules: list[Rule],
                         dates) -> dict:
    """What ``run_rules`` gives date by date, for many trading dates of a partitioned table at once:
    one scan grouped by date for all row rules, one call for each table rule that can judge many
    dates in one query (``evaluate_many(rule, ctx, conn, dates) -> {date: result}``), the other
    table rules date by date (as ``run_rules`` runs them). ``ctx`` is any date's context of the table."""
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
    date_by_date = []
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
        if results is None:
            date_by_date.append(rule)
            continue
        for d in dates:
            outcomes[d][rule.name] = _outcome(rule, *results[d])
    for d in dates:
        outcomes[d].update(_run_table_rules(conn, per_date[d], date_by_date))
    return {d: [outcomes[d][r.name] for r in rules] for d in dates}


def _sample(conn, ctx: TableContext, wanted_by_rule: list[tuple[list[str], str]]) -> list[tuple[list[dict], dict]]:
    """Up to SAMPLE_LIMIT failing rows (first in file order) and the affected symbols, accounts, ...
    of each failing rule, all in one scan: ``[(rule_columns, failing_condition)]`` in, one
    ``(samples, affected)`` per rule out."""
    if not wanted_by_rule:
        return []
    present = set(ctx.columns)
    lineage = [c for c in ("_source_line", "_source_file") if c in present]
    affected_columns = [c for c in _AFFECTED_COLUMNS if c in present]
    # Every rule's samples show the date, the key and who is affected, then the rule's own
    # columns, then where in the file the row came from.
    leading = [c for c in ("business_date", *ctx.key_columns) if c in present] + affected_columns
    trailing = [c for c in ("_source_file", "_source_line") if c in present]
    selects, shapes = [], []
    for rule_columns, condition in wanted_by_rule:
        wanted = list(dict.fromkeys(leading + [c for c in rule_columns if c in present] + trailing)) or list(ctx.columns)
        row = "{" + ", ".join(f"{_sql_string(c)}: {_quote_ident(c)}" for c in wanted) + "}"
        # The first rows of the file; without lineage columns, the smallest rows (deterministic).
        order = "(" + ", ".join(_quote_ident(c) for c in lineage) + ")" if lineage else row
        selects.append(f"min_by({row}, {order}, {SAMPLE_LIMIT}) FILTER (WHERE {condition})")
        selects += [f"list(DISTINCT {_quote_ident(c)}) FILTER (WHERE ({condition}) AND {_quote_ident(c)} IS NOT NULL)"
                    for c in affected_columns]
        shapes.append(wanted)
    everything = " OR ".join(f"({condition})" for _, condition in wanted_by_rule)
    values = conn.execute(
        f"SELECT {', '.join(selects)} FROM {ctx.relation} WHERE {ctx.where} AND ({everything})", ctx.params
    ).fetchone()
    out, at = [], 0
    for _ in shapes:
        samples = [dict(r) for r in values[at] or []]
        lists = values[at + 1:at + 1 + len(affected_columns)]
        at += 1 + len(affected_columns)
        affected = {c: [str(v) for v in sorted(found)[:_AFFECTED_LIMIT]] for c, found in zip(affected_columns, lists) if found}
        out.append((samples, affected))
    return out


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
