"""The rule vocabulary and how each rule is decided in SQL on the warehouse.

Two kinds of rule:
- row rules name a condition that a failing row meets; all row rules of a table are counted
  in one scan (``count_if`` per condition), and only the failing ones are sampled afterwards;
- table rules need a whole-table view (duplicates, ordering, references) and run one query each.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import duckdb

from asset_checks.outcome import list_for_sentence
from asset_checks.rules import Rule, RuleFileError, parse_percent, parse_settings


@dataclasses.dataclass
class TableContext:
    """The table a rule set runs on, restricted to one trading date when partitioned."""

    table: str  # the rule file's table name, e.g. "quotes"
    relation: str  # the warehouse relation, e.g. "raw.quotes"
    business_date: Any  # datetime.date or None
    key_columns: tuple[str, ...]
    columns: tuple[str, ...]  # the relation's columns
    # What several table rules of one run read alike, computed once (set by the engine).
    shared: SharedRelations | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def where(self) -> str:
        return self.where_for()

    def where_for(self, alias: str | None = None) -> str:
        column = f"{alias}.business_date" if alias else "business_date"
        return f"{column} = $business_date" if self.business_date is not None else "TRUE"

    @property
    def params(self) -> dict:
        return {"business_date": self.business_date} if self.business_date is not None else {}

    def describe_rows(self) -> str:
        return f"{self.table} rows" + (f" of {self.business_date}" if self.business_date is not None else "")


class SharedRelations:
    """Intermediate results that several rules of one run read, each computed once.

    A rule type names what it reads through ``shared_needs(rule, ctx)``; the engine collects
    these keys before the run, and the first rule that asks for a wanted key computes it into a
    temporary table that the others then read (a few thousand rows instead of another scan of
    millions). A key nobody declared is not kept: the asking rule gets its SQL as a subquery, so a
    rule alone costs what it did. The tables live on the run's connection and are dropped after it.
    """

    _names = itertools.count()

    def __init__(self, conn: duckdb.DuckDBPyConnection, wanted):
        self.conn = conn
        self.wanted = set(wanted)
        self._tables: dict[Any, str] = {}

    def declared(self, kind: str) -> list[tuple]:
        """The wanted keys of one kind, e.g. every bucket width of ``quote_buckets``."""
        return sorted((k for k in self.wanted if k[0] == kind), key=repr)

    def relation(self, key, sql: str, params: dict) -> str:
        """The table holding ``sql``'s result when ``key`` is wanted, else ``(sql)`` to inline."""
        if key not in self.wanted:
            return f"({sql})"
        if key not in self._tables:
            name = f"cei_shared_{next(self._names)}"
            self.conn.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
            self._tables[key] = name
        return f"temp.{self._tables[key]}"

    def close(self) -> None:
        for name in self._tables.values():
            try:
                self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
            except duckdb.Error:  # the connection is failing or closing: its temp tables go with it
                pass
        self._tables.clear()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: Any) -> str:
    return "'" + str(text).replace("'", "''") + "'"


class RuleType:
    kind = "row"  # or "table"
    options: tuple[str, ...] = ()
    needs_columns: bool = False

    @classmethod
    def default_name(cls, param: Any, options: dict) -> str:
        return cls.__name__.lower()

    @classmethod
    def validate(cls, rule: Rule) -> None:
        pass

    @classmethod
    def columns_of(cls, rule: Rule) -> list[str]:
        return []

    @classmethod
    def shared_needs(cls, rule: Rule, ctx: TableContext) -> tuple:
        """Keys of the ``SharedRelations`` this rule reads (see ``TableContext.shared``)."""
        return ()


def _columns_option(rule: Rule, default: list[str] | None = None) -> list[str]:
    columns = rule.option("columns", default)
    if columns is None:
        return []
    return [columns] if isinstance(columns, str) else list(columns)


def _suffix(columns: list[str]) -> str:
    return ("_" + "_".join(columns)) if columns else ""


# ----------------------------------------------------------------------------- row rules


class NullTolerance(RuleType):
    """``null_tolerance: 0.0%`` with ``columns``: at most that share of nulls per column."""

    options = ("columns",)

    @classmethod
    def default_name(cls, param, options):
        return "null_tolerance" + _suffix(_columns_option_raw(options))

    @classmethod
    def validate(cls, rule):
        parse_percent(rule.param, rule.source)
        if not _columns_option(rule):
            raise RuleFileError(f"{rule.source}: null_tolerance needs columns: [...]")

    @classmethod
    def conditions(cls, rule, ctx):
        return {col: f"{_quote_ident(col)} IS NULL" for col in _columns_option(rule)}

    @classmethod
    def judge(cls, rule, ctx, counts, total):
        tolerance = parse_percent(rule.param, rule.source)
        over = {col: n for col, n in counts.items() if total and n / total > tolerance or (not total and n)}
        failing = max(counts.values()) if counts else 0
        if not over:
            return True, failing, f"nulls within {tolerance:.1%} in {', '.join(counts)}", tolerance
        parts = [f"{n / total:.1%} of {ctx.describe_rows()} have null {col}" for col, n in over.items()]
        return False, max(over.values()), "; ".join(parts) + f" (tolerance {tolerance:.1%})", tolerance


def _columns_option_raw(options: dict) -> list[str]:
    columns = options.get("columns") or []
    return [columns] if isinstance(columns, str) else list(columns)


class _RowCondition(RuleType):
    """A row rule with one failing condition."""

    @classmethod
    def condition(cls, rule, ctx) -> str:
        raise NotImplementedError

    @classmethod
    def conditions(cls, rule, ctx):
        return {"rows": cls.condition(rule, ctx)}

    @classmethod
    def sentence(cls, rule, ctx, n, total) -> str:
        raise NotImplementedError

    @classmethod
    def judge(cls, rule, ctx, counts, total):
        n = counts["rows"]
        return n == 0, n, cls.sentence(rule, ctx, n, total), cls.threshold(rule)

    @classmethod
    def threshold(cls, rule):
        return rule.param


class PriceRange(_RowCondition):
    """``price_range: [min, max]`` on ``columns`` (default bid, ask): prices inside the range."""

    options = ("columns",)

    @classmethod
    def default_name(cls, param, options):
        return "price_range" + _suffix(_columns_option_raw(options))

    @classmethod
    def validate(cls, rule):
        if not (isinstance(rule.param, list) and len(rule.param) == 2 and all(isinstance(v, (int, float)) for v in rule.param)):
            raise RuleFileError(f"{rule.source}: price_range takes [min, max], got {rule.param!r}")
        if not _columns_option(rule, ["bid", "ask"]):
            raise RuleFileError(f"{rule.source}: price_range needs columns")

    @classmethod
    def condition(cls, rule, ctx):
        low, high = rule.param
        parts = [f"({_quote_ident(c)} < {low} OR {_quote_ident(c)} > {high})" for c in _columns_option(rule, ["bid", "ask"])]
        return " OR ".join(parts)

    @classmethod
    def sentence(cls, rule, ctx, n, total):
        low, high = rule.param
        cols = "/".join(_columns_option(rule, ["bid", "ask"]))
        return f"{n:,} of {total:,} {ctx.describe_rows()} have {cols} outside [{low}, {high}]"

    @classmethod
    def columns_of(cls, rule):
        return _columns_option(rule, ["bid", "ask"])


class Positive(_RowCondition):
    """``positive: [columns]``: strictly greater than zero where present."""

    @classmethod
    def default_name(cls, param, options):
        return "positive" + _suffix(param if isinstance(param, list) else [param])

    @classmethod
    def _cols(cls, rule):
        return rule.param if isinstance(rule.param, list) else [rule.param]

    @classmethod
    def condition(cls, rule, ctx):
        return " OR ".join(f"{_quote_ident(c)} <= 0" for c in cls._cols(rule))

    @classmethod
    def sentence(cls, rule, ctx, n, total):
        return f"{n:,} of {total:,} {ctx.describe_rows()} have zero or negative {'/'.join(cls._cols(rule))}"

    @classmethod
    def columns_of(cls, rule):
        return cls._cols(rule)


class ValueRange(_RowCondition):
    """``value_range: {column: c, min: a, max: b}`` (either bound may be left out)."""

    @classmethod
    def default_name(cls, param, options):
        return f"value_range_{param.get('column', 'value')}" if isinstance(param, dict) else "value_range"

    @classmethod
    def validate(cls, rule):
        if not isinstance(rule.param, dict) or "column" not in rule.param or not ({"min", "max"} & set(rule.param)):
            raise RuleFileError(f"{rule.source}: value_range takes {{column: c, min: a, max: b}}")

    @classmethod
    def condition(cls, rule, ctx):
        col = _quote_ident(rule.param["column"])
        parts = []
        if "min" in rule.param:
            parts.append(f"{col} < {rule.param['min']}")
        if "max" in rule.param:
            parts.append(f"{col} > {rule.param['max']}")
        return " OR ".join(parts)

    @classmethod
    def sentence(cls, rule, ctx, n, total):
        bounds = f"[{rule.param.get('min', '-inf')}, {rule.param.get('max', 'inf')}]"
        return f"{n:,} of {total:,} {ctx.describe_rows()} have {rule.param['column']} outside {bounds}"

    @classmethod
    def columns_of(cls, rule):
        return [rule.param["column"]]


class AllowedValues(_RowCondition):
    """``allowed_values: {column: [values]}``."""

    @classmethod
    def default_name(cls, param, options):
        return "allowed_values_" + "_".join(k for k in param if k != "__line__") if isinstance(param, dict) else "allowed_values"

    @classmethod
    def validate(cls, rule):
        if not isinstance(rule.param, dict) or len([k for k in rule.param if k != "__line__"]) != 1:
            raise RuleFileError(f"{rule.source}: allowed_values takes {{column: [values]}}")

    @classmethod
    def _column_values(cls, rule):
        ((column, values),) = [(k, v) for k, v in rule.param.items() if k != "__line__"]
        return column, values

    @classmethod
    def condition(cls, rule, ctx):
        column, values = cls._column_values(rule)
        listed = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
        return f"{_quote_ident(column)} IS NOT NULL AND {_quote_ident(column)} NOT IN ({listed})"

    @classmethod
    def sentence(cls, rule, ctx, n, total):
        column, values = cls._column_values(rule)
        return f"{n:,} of {total:,} {ctx.describe_rows()} have {column} not in {', '.join(map(str, values))}"

    @classmethod
    def columns_of(cls, rule):
        return [cls._column_values(rule)[0]]


class TimestampWithinDate(_RowCondition):
    """``timestamp_within_date: ts``: UTC timestamps on the trading date itself."""

    @classmethod
    def default_name(cls, param, options):
        return f"timestamp_within_date_{param}"

    @classmethod
    def condition(cls, rule, ctx):
        return f"CAST({_quote_ident(rule.param)} AS DATE) <> business_date"

    @classmethod
    def sentence(cls, rule, ctx, n, total):
        return f"{n:,} of {total:,} {ctx.describe_rows()} have {rule.param} outside the trading date (UTC)"

    @classmethod
    def columns_of(cls, rule):
        return [rule.param]


class CrossedQuotes(_RowCondition):
    """``crossed_quotes: true``: bid above ask."""

    @classmethod
    def default_name(cls, param, options):
        return "crossed_quotes"

    @classmethod
    def condition(cls, rule, ctx):
        return "bid > ask"

    @classmethod
    def sentence(cls, rule, ctx, n, total):
        return f"{n:,} of {total:,} {ctx.describe_rows()} are crossed (bid above ask)"

    @classmethod
    def columns_of(cls, rule):
        return ["bid", "ask"]


class LockedQuotes(CrossedQuotes):
    """``locked_quotes: true``: bid equal to ask."""

    @classmethod
    def default_name(cls, param, options):
        return "locked_quotes"

    @classmethod
    def condition(cls, rule, ctx):
        return "bid = ask"

    @classmethod
    def sentence(cls, rule, ctx, n, total):
        return f"{n:,} of {total:,} {ctx.describe_rows()} are locked (bid equal to ask)"


class Expression(_RowCondition):
    """``expression: {must: SQL condition every row meets, says: what a failure means}``."""

    options = ("columns",)

    @classmethod
    def default_name(cls, param, options):
        return "expression"

    @classmethod
    def validate(cls, rule):
        if not isinstance(rule.param, dict) or "must" not in rule.param or "says" not in rule.param:
            raise RuleFileError(f"{rule.source}: expression takes {{must: <SQL condition>, says: <what a failure means>}}")
        if "name" not in rule.options:
            raise RuleFileError(f"{rule.source}: an expression rule needs a name:")

    @classmethod
    def condition(cls, rule, ctx):
        return f"NOT coalesce(({rule.param['must']}), FALSE)"

    @classmethod
    def sentence(cls, rule, ctx, n, total):
        return f"{n:,} of {total:,} {ctx.describe_rows()} {rule.param['says']}"

    @classmethod
    def threshold(cls, rule):
        return rule.param["must"]

    @classmethod
    def columns_of(cls, rule):
        return _columns_option(rule)


# ----------------------------------------------------------------------------- table rules


class ColumnPresence(RuleType):
    """``column_presence: [columns]``: the table has every listed column."""

    kind = "table"

    @classmethod
    def default_name(cls, param, options):
        return "column_presence"

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        missing = [c for c in rule.param if c not in ctx.columns]
        if missing:
            return False, len(missing), 0, f"{ctx.table} lacks column(s) {', '.join(missing)}", [], {}
        return True, 0, 0, f"{ctx.table} has every required column", [], {}


class Unique(RuleType):
    """``unique: [columns]``: no two rows share these values."""

    kind = "table"

    @classmethod
    def default_name(cls, param, options):
        return "unique" + _suffix(param if isinstance(param, list) else [param])

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        cols = rule.param if isinstance(rule.param, list) else [rule.param]
        col_sql = ", ".join(_quote_ident(c) for c in cols)
        rows = conn.execute(
            f"SELECT {col_sql}, count(*) AS copies FROM {ctx.relation} WHERE {ctx.where} "
            f"GROUP BY ALL HAVING count(*) > 1 ORDER BY copies DESC LIMIT 20",
            ctx.params,
        ).fetchall()
        if not rows:
            return cls.passed(rule, ctx)
        duplicated = conn.execute(
            f"SELECT count(*), coalesce(sum(copies), 0) FROM (SELECT count(*) AS copies FROM {ctx.relation} "
            f"WHERE {ctx.where} GROUP BY {col_sql} HAVING count(*) > 1)",
            ctx.params,
        ).fetchone()
        samples = [dict(zip([*cols, "copies"], r)) for r in rows]
        keys = [" / ".join(str(v) for v in r[:-1]) for r in rows]
        text = f"{duplicated[0]:,} {'/'.join(cols)} value(s) appear more than once in {ctx.describe_rows()}: {list_for_sentence(keys)}"
        return False, int(duplicated[1]), 0, text, samples, {}

    @classmethod
    def passed(cls, rule, ctx):
        cols = rule.param if isinstance(rule.param, list) else [rule.param]
        return True, 0, 0, f"every {'/'.join(cols)} is unique in {ctx.describe_rows()}", [], {}

    @classmethod
    def evaluate_many(cls, rule, ctx, conn, dates):
        """Many trading dates in one query; the dates with duplicates are then described one by one."""
        cols = rule.param if isinstance(rule.param, list) else [rule.param]
        flagged = conn.execute(
            f"SELECT DISTINCT business_date FROM {ctx.relation} WHERE business_date BETWEEN $first AND $last "
            f"GROUP BY business_date, {', '.join(_quote_ident(c) for c in cols)} HAVING count(*) > 1",
            {"first": min(dates), "last": max(dates)},
        ).fetchall()
        return _screened(cls, rule, ctx, conn, dates, {r[0] for r in flagged})


def _screened(rule_type, rule, ctx, conn, dates, flagged) -> dict:
    """Results per date: the full evaluation where a screening query flagged the date, else a pass."""
    out = {}
    for day in dates:
        day_ctx = dataclasses.replace(ctx, business_date=day)
        out[day] = rule_type.evaluate(rule, day_ctx, conn) if day in flagged else rule_type.passed(rule, day_ctx)
    return out


class RowCount(RuleType):
    """``row_count: {min: N, max: M}``: the partition holds an expected number of rows."""

    kind = "table"

    @classmethod
    def default_name(cls, param, options):
        return "row_count"

    @classmethod
    def validate(cls, rule):
        settings = parse_settings(rule.param, rule.source)
        if not {"min", "max"} & set(settings):
            raise RuleFileError(f"{rule.source}: row_count takes min and/or max")

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        settings = parse_settings(rule.param, rule.source)
        (count,) = conn.execute(f"SELECT count(*) FROM {ctx.relation} WHERE {ctx.where}", ctx.params).fetchone()
        low, high = settings.get("min"), settings.get("max")
        if (low is not None and count < low) or (high is not None and count > high):
            return False, 1, count, f"{ctx.describe_rows()}: {count:,} rows, expected between {low or 0} and {high or 'any'}", [], {}
        return True, 0, count, f"{count:,} {ctx.describe_rows()}", [], {}


class TimestampMonotonicity(RuleType):
    """``timestamp_monotonicity: non_decreasing`` (or ``strict_increasing``) per ``by`` columns."""

    kind = "table"
    options = ("by", "column")

    @classmethod
    def default_name(cls, param, options):
        return "timestamp_monotonicity"

    @classmethod
    def validate(cls, rule):
        if rule.param not in ("non_decreasing", "strict_increasing"):
            raise RuleFileError(f"{rule.source}: timestamp_monotonicity is non_decreasing or strict_increasing")

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        column = rule.option("column", "ts")
        by = rule.option("by", [])
        by = [by] if isinstance(by, str) else list(by)
        bad = "<=" if rule.param == "strict_increasing" else "<"
        # File order is the feed's order: _source_line keeps it within each file. A trading
        # date has one file per dataset, or per vendor for quotes, so when the groups already
        # split by vendor the line alone orders them (sorting on the file name too costs more).
        one_file_per_group = ctx.table != "quotes" or "vendor" in by
        group_sql = ", ".join(_quote_ident(c) for c in by)
        keys = group_sql + ", " if by else ""
        # Each group's stamps and its feed order are gathered by one hash aggregate, and each
        # group's list is put in feed order on its own (a sort of ~10 thousand entries per
        # symbol). A window (lag() OVER (PARTITION BY ... ORDER BY line)) gives the same pairs
        # but sorts every row of the table with its payload: 3.5 times the time and 1.8 times
        # the memory at 10 million quotes (docs/benchmarks.md).
        # Lines are kept as 32-bit integers, which halves the lists' memory (a file of more than
        # two billion lines would make the rule fail, saying why).
        if one_file_per_group:
            order, file_of = "list(_source_line::INTEGER)", "any_value(_source_file)"
            line_at, file_at = "order_key[p[i]]", "source_file"
        else:
            order, file_of = "list({'file': _source_file, 'line': _source_line::INTEGER})", "NULL::VARCHAR"
            line_at, file_at = "order_key[p[i]].line", "order_key[p[i]].file"
        sample = ", ".join([f"{_sql_string(c)}: {_quote_ident(c)}" for c in by]
                           + [f"'{c}': {c}" for c in ("ts", "previous_ts", "_source_file", "_source_line")])
        query = f"""
            WITH groups AS (
                SELECT {keys}list({_quote_ident(column)}) AS stamps, {order} AS order_key, {file_of} AS source_file
                FROM {ctx.relation} WHERE {ctx.where}
                {"GROUP BY " + group_sql if by else ""}
            ),
            ordered AS (  -- p: the positions of the group's quotes in feed order
                SELECT *, list_grade_up(order_key) AS p FROM groups
            ),
            flagged AS (
                SELECT *, list_filter(range(2, len(p) + 1), lambda i: stamps[p[i]] {bad} stamps[p[i - 1]]) AS steps
                FROM ordered
            ),
            backwards AS (
                SELECT {keys}unnest(list_transform(steps, lambda i: {{
                    'ts': stamps[p[i]], 'previous_ts': stamps[p[i - 1]], '_source_file': {file_at}, '_source_line': {line_at}
                }}), recursive := true)
                FROM flagged WHERE len(steps) > 0
            )
            -- an aggregate, not count(*) OVER (): a window over the whole result would run the
            -- steps above on one thread
            SELECT count(*), min_by({{{sample}}}, (_source_line, _source_file{", " + group_sql if by else ""}), 20)
            FROM backwards
        """
        count, found = conn.execute(query, ctx.params).fetchone()
        samples = [dict(row) for row in found or []]
        if not count:
            return True, 0, 0, f"{column} {rule.param.replace('_', '-')} per {'/'.join(by) or 'table'}", [], {}
        affected = {}
        if "symbol" in by:
            affected["symbol"] = sorted({s["symbol"] for s in samples})
        text = (
            f"{count:,} {ctx.describe_rows()} go back in time against the previous {column} of their "
            f"{'/'.join(by) or 'table'}" + (f" ({list_for_sentence(affected['symbol'])})" if affected else "")
        )
        return False, count, 0, text, samples, affected


class Referential(RuleType):
    """``referential: {column: c, references: relation.column}``: every value exists there."""

    kind = "table"

    @classmethod
    def default_name(cls, param, options):
        return f"referential_{param.get('column', '')}" if isinstance(param, dict) else "referential"

    @classmethod
    def validate(cls, rule):
        if not isinstance(rule.param, dict) or "column" not in rule.param or "references" not in rule.param:
            raise RuleFileError(f"{rule.source}: referential takes {{column: c, references: schema.table.column}}")

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        column = rule.param["column"]
        relation, _, target = rule.param["references"].rpartition(".")
        same_date = rule.param.get("same_date", False)
        date_join = " AND r.business_date = t.business_date" if same_date else ""
        # Each distinct value is looked up once: the big table is grouped by value first (a few
        # hundred symbols for millions of quotes), which is cheaper than probing row by row.
        query = f"""
            SELECT value, sum(rows) AS rows FROM (
                SELECT t.{_quote_ident(column)} AS value, {"t.business_date" if same_date else "NULL"} AS business_date,
                       count(*) AS rows
                FROM {ctx.relation} AS t
                WHERE {ctx.where_for('t')} AND t.{_quote_ident(column)} IS NOT NULL
                GROUP BY ALL
            ) AS t
            WHERE NOT EXISTS (SELECT 1 FROM {relation} AS r WHERE r.{_quote_ident(target)} = t.value{date_join})
            GROUP BY 1 ORDER BY 2 DESC, 1
        """
        rows = conn.execute(query, ctx.params).fetchall()
        if not rows:
            return cls.passed(rule, ctx)
        failing = sum(r[1] for r in rows)
        values = [str(r[0]) for r in rows]
        text = f"{failing:,} {ctx.describe_rows()} have a {column} missing from {rule.param['references']}: {list_for_sentence(values)}"
        return False, failing, 0, text, [{column: r[0], "rows": r[1]} for r in rows[:20]], {column: values}

    @classmethod
    def passed(cls, rule, ctx):
        return True, 0, 0, f"every {rule.param['column']} exists in {rule.param['references']}", [], {}

    @classmethod
    def evaluate_many(cls, rule, ctx, conn, dates):
        """Many trading dates in one query; the dates with missing references are then described one by one."""
        column = rule.param["column"]
        relation, _, target = rule.param["references"].rpartition(".")
        date_join = " AND r.business_date = t.business_date" if rule.param.get("same_date", False) else ""
        flagged = conn.execute(
            f"SELECT DISTINCT t.business_date FROM (SELECT DISTINCT business_date, {_quote_ident(column)} AS value "
            f"FROM {ctx.relation} WHERE business_date BETWEEN $first AND $last AND {_quote_ident(column)} IS NOT NULL) AS t "
            f"WHERE NOT EXISTS (SELECT 1 FROM {relation} AS r WHERE r.{_quote_ident(target)} = t.value{date_join})",
            {"first": min(dates), "last": max(dates)},
        ).fetchall()
        return _screened(cls, rule, ctx, conn, dates, {r[0] for r in flagged})


GENERIC_RULE_TYPES: dict[str, type[RuleType]] = {
    "null_tolerance": NullTolerance,
    "price_range": PriceRange,
    "positive": Positive,
    "value_range": ValueRange,
    "allowed_values": AllowedValues,
    "timestamp_within_date": TimestampWithinDate,
    "crossed_quotes": CrossedQuotes,
    "locked_quotes": LockedQuotes,
    "expression": Expression,
    "column_presence": ColumnPresence,
    "unique": Unique,
    "row_count": RowCount,
    "timestamp_monotonicity": TimestampMonotonicity,
    "referential": Referential,
}
