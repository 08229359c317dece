"""The warehouse on PostgreSQL, for firms whose data outgrows one machine.

CEI's SQL is written once, in DuckDB's dialect: the check rules, the books' helpers, the command
line. On PostgreSQL a ``PostgresConnection`` offers the part of DuckDB's connection API that CEI
uses (``execute(sql, params)`` then ``fetchall()``/``fetchone()``/``df()``/``description``) and
translates each statement with sqlglot (DuckDB to PostgreSQL), so no check branches on the engine.
A few DuckDB constructs have no PostgreSQL spelling; they are rewritten here (``_rewrite``) or
served by small SQL functions CEI installs in the warehouse's ``cei_compat`` schema
(``COMPAT_SQL``): median and MAD usable as window functions, ``any_value``, DuckDB's ``format``
for the reconciliation's sentences, ``error`` for dbt's fail-closed validation.

Parameters are bound as literals by psycopg2 itself (``mogrify``), never by string formatting.
Errors surface as ``PostgresWarehouseError``, a ``duckdb.Error``, because callers already turn a
``duckdb.Error`` into a failed check with the reason.

Landing files are still parsed by DuckDB, which names the file, the column and the lines of every
bad value (cei_assets/ingestion.py); the parsed rows are then copied into PostgreSQL's ``raw``
schema with ``COPY FROM STDIN`` (``load_dataset_into_postgres``).

Concurrency: PostgreSQL serves readers while writers write (MVCC), so ``read()`` takes no lock.
Writers still exclude each other with a session advisory lock: a date's partition is replaced by
delete-then-insert, which two concurrent writers of the same date would duplicate, and the lock
works across machines (Celery workers), where the DuckDB file lock could not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import functools
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb
import psycopg2
import psycopg2.extensions
import psycopg2.extras
import sqlglot
from sqlglot import exp

from cei_assets.settings import SettingsError
from cei_assets.warehouse_locks import process_lock, wait_for_lock

log = logging.getLogger(__name__)

COMPAT_SCHEMA = "cei_compat"
# Bump when COMPAT_SQL changes: every warehouse is brought up to date by its next writer.
COMPAT_VERSION = 2
# Advisory-lock keys (class, object): CEI's writers, and the installation of the functions.
_LOCK_CLASS = 0x0CE1
WRITERS_LOCK = (_LOCK_CLASS, 1)
_INSTALL_KEY = 2


class PostgresWarehouseError(duckdb.Error):
    """A statement failed on the PostgreSQL warehouse (or could not be translated for it)."""


class WarehouseURLError(SettingsError):
    """CEI_WAREHOUSE_URL does not name a PostgreSQL database; the message says what to fix."""


# --------------------------------------------------------------------------------------------
# Where the warehouse is


@dataclasses.dataclass(frozen=True)
class PostgresTarget:
    """The coordinates of a PostgreSQL warehouse, parsed from its URL."""

    url: str
    host: str
    port: int
    user: str
    password: str
    dbname: str
    options: str = ""

    @property
    def dsn(self) -> str:
        """libpq's URL (SQLAlchemy's ``postgresql+psycopg2://`` prefix removed)."""
        return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", self.url)

    @property
    def shown(self) -> str:
        """The URL without its password, for messages and logs."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def dbt_environment(self) -> dict[str, str]:
        """What dbt_project/profiles.yml's ``postgres`` target reads. The password goes in dbt's
        DBT_ENV_SECRET_ variable, which dbt scrubs from its logs."""
        return {
            "CEI_DBT_TARGET": "postgres",
            "CEI_WAREHOUSE_PG_HOST": self.host,
            "CEI_WAREHOUSE_PG_PORT": str(self.port),
            "CEI_WAREHOUSE_PG_USER": self.user,
            "CEI_WAREHOUSE_PG_DATABASE": self.dbname,
            "DBT_ENV_SECRET_CEI_WAREHOUSE_PG_PASSWORD": self.password,
        }


def parse_url(url: str) -> PostgresTarget:
    """Parse ``postgresql://user[:password]@host[:port]/dbname[?options=...]``.

    The password may also come from libpq's ``PGPASSWORD`` (or ``~/.pgpass``); nothing secret
    needs to be in the URL.
    """
    # Parsed once per URL and environment: the warehouse resource asks at every connection.
    return _parse_url(url.strip(), os.environ.get("PGUSER", ""), os.environ.get("USER", ""),
                      os.environ.get("PGPASSWORD", ""))


@functools.lru_cache(maxsize=64)
def _parse_url(text: str, pguser: str, login: str, pgpassword: str) -> PostgresTarget:
    parts = urlsplit(text)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise WarehouseURLError(
            f"CEI_WAREHOUSE_URL must be a PostgreSQL URL such as postgresql://user@host:5432/dbname, "
            f"not one starting {parts.scheme or text[:12]!r}; leave it unset for the DuckDB file (CEI_WAREHOUSE)"
        )
    dbname = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not dbname:
        raise WarehouseURLError("CEI_WAREHOUSE_URL must name the server and the database: postgresql://user@host:5432/dbname")
    try:
        port = parts.port or 5432
    except ValueError:
        raise WarehouseURLError("CEI_WAREHOUSE_URL has a port that is not a number") from None
    user = unquote(parts.username or "") or pguser or login
    password = unquote(parts.password or "") or pgpassword
    options = parse_qs(parts.query).get("options", [""])[0]
    return PostgresTarget(url=text, host=parts.hostname, port=port, user=user, password=password,
                          dbname=dbname, options=options)


def _connect(target: PostgresTarget, application: str):
    """An autocommit psycopg2 session on the warehouse; when the server refuses, the error says
    which warehouse and what to set (the password may be missing from the URL and PGPASSWORD)."""
    try:
        conn = psycopg2.connect(target.dsn, application_name=application, connect_timeout=10)
    except psycopg2.Error as error:
        raise PostgresWarehouseError(
            f"cannot connect to the PostgreSQL warehouse {target.shown}: {str(error).strip()} "
            "(check CEI_WAREHOUSE_URL; a password goes in the URL or in PGPASSWORD)"
        ) from None
    conn.autocommit = True
    return conn


# --------------------------------------------------------------------------------------------
# DuckDB SQL to PostgreSQL


def _param_marker(i: int) -> exp.Expression:
    return exp.Var(this=f"__CEI_PARAM_{i}__")


_MARKER = re.compile(r"__CEI_PARAM_(\d+)__")



def _compat(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=f"{COMPAT_SCHEMA}.{name.lower()}", expressions=list(args))


def _expand_group_by_all(select: exp.Select) -> None:
    group = select.args.get("group")
    if not group or not group.args.get("all"):
        return
    ordinals = []
    for position, projection in enumerate(select.expressions, start=1):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if not _contains_aggregate(inner):
            ordinals.append(exp.Literal.number(position))
    select.set("group", exp.Group(expressions=ordinals) if ordinals else None)


def _contains_aggregate(node: exp.Expression) -> bool:
    """An aggregate of this SELECT (not one inside a window, subquery or lambda)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (exp.Subquery, exp.Select, exp.Lambda)):
            continue
        if isinstance(current, exp.Window):
            return True  # not a grouping key either: PostgreSQL refuses window functions in GROUP BY
        if isinstance(current, exp.AggFunc) or (
            isinstance(current, exp.Anonymous) and current.name.upper() in ("MAD", "MEDIAN", "ANY_VALUE")
        ):
            return True
        stack.extend(current.iter_expressions())
    return False


def _inner(node: exp.Expression) -> exp.Expression:
    """A child of a rewritten node, itself rewritten (transform skips a replacement's children)."""
    return node.copy().transform(_rewrite)


def _template(sql: str, **parts: exp.Expression) -> exp.Expression:
    """PostgreSQL from a template whose columns __name__ stand for the given expressions."""
    tree = sqlglot.parse_one(sql, read="postgres")
    return tree.transform(
        lambda n: _inner(parts[n.name.strip("_")]) if isinstance(n, exp.Column) and n.name.startswith("__") else n)


def _as_comprehension(node: exp.Expression) -> exp.Comprehension | None:
    """DuckDB's ways of mapping and filtering a list, as one comprehension:
    ``[f(x) FOR x IN l IF c]``, ``list_transform(l, lambda x: f(x))``, ``list_filter(l, lambda x: c)``."""
    if isinstance(node, exp.Array) and len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Comprehension):
        return node.expressions[0]
    if isinstance(node, exp.Comprehension):
        return node
    if isinstance(node, (exp.Transform, exp.ArrayFilter)) and isinstance(node.expression, exp.Lambda) \
            and len(node.expression.expressions) == 1:
        variable = node.expression.expressions[0]
        if isinstance(node, exp.Transform):
            return exp.Comprehension(this=node.expression.this, expression=variable, iterator=node.this)
        return exp.Comprehension(this=exp.column(variable.name), expression=variable, iterator=node.this,
                                 condition=node.expression.this)
    return None


def _series(node: exp.GenerateSeries) -> exp.GenerateSeries:
    """A series with its bounds rewritten (the series itself stays: it is the rows of a FROM)."""
    series = node.copy()
    for key in ("start", "end", "step"):
        if series.args.get(key) is not None:
            series.set(key, _inner(series.args[key]))
    return series


def _comprehension_select(comprehension: exp.Comprehension, projections: list[exp.Expression],
                          alias: str) -> exp.Select:
    """``SELECT projections FROM <the list or range> AS alias(x) [WHERE c]``, in the list's order."""
    iterator = comprehension.args["iterator"]
    variable = exp.to_identifier(comprehension.expression.name)
    if isinstance(iterator, exp.GenerateSeries):  # range(m, n): a series, in its order
        source = exp.Table(this=_series(iterator), alias=exp.TableAlias(this=exp.to_identifier(alias), columns=[variable]))
        order = exp.column(variable.name, table=alias)
    else:
        iterator = _inner(iterator)
        position = exp.to_identifier(f"{alias}_position")
        source = sqlglot.parse_one(
            f"SELECT 1 FROM UNNEST(__list__) WITH ORDINALITY AS {alias}({variable.name}, {position.name})",
            read="postgres").args["from_"].this.transform(
                lambda n: iterator if isinstance(n, exp.Column) and n.name == "__list__" else n)
        order = exp.column(position.name, table=alias)
    select = exp.select(*projections).from_(source)
    if comprehension.args.get("condition") is not None:
        select = select.where(_inner(comprehension.args["condition"]))
    return select.order_by(order)


def _unnest_comprehensions(select: exp.Select) -> None:
    """DuckDB's ``SELECT k, unnest(<list of structs>, recursive := true)`` (one row per element, the
    struct's fields as columns), the list mapped from another by a comprehension or
    ``list_transform``, as a lateral join: ``SELECT k, u.a, ... FROM ... CROSS JOIN LATERAL
    (SELECT x[i] AS a, ... FROM <the list> AS u_range(i) WHERE c) AS u``."""
    for number, projection in enumerate(list(select.expressions)):
        explode = projection.this if isinstance(projection, exp.Alias) else projection
        comprehension = _as_comprehension(explode.this) if isinstance(explode, exp.Explode) else None
        if comprehension is None or not isinstance(comprehension.this, exp.Struct):
            continue
        fields = comprehension.this.expressions
        if not all(isinstance(f, exp.PropertyEQ) for f in fields):
            raise PostgresWarehouseError("CEI cannot translate an unnested list of unnamed structs for PostgreSQL")
        alias = f"_cei_unnest_{number}"
        inner = _comprehension_select(
            comprehension, [exp.alias_(_inner(f.expression), f.this.name) for f in fields], f"{alias}_range")
        join = sqlglot.parse_one(f"SELECT 1 FROM x CROSS JOIN LATERAL (SELECT 1) AS {alias}", read="postgres").args["joins"][0]
        join.this.this.set("this", inner)
        select.append("joins", join)
        columns = [exp.column(f.this.name, table=alias) for f in fields]
        select.set("expressions", select.expressions[:number] + columns + select.expressions[number + 1:])
        return _unnest_comprehensions(select)  # positions moved: look again


def _arg_extreme(node: exp.ArgMax | exp.ArgMin, condition: exp.Expression | None) -> exp.Expression:
    """arg_max(x, by) / min_by(x, by[, n]) [FILTER (WHERE c)]: x of the row with the largest (smallest)
    by, rows with a null by ignored; with n, the list of the n first in that order."""
    by = node.expression
    # A struct orders field by field in DuckDB, as a row does in PostgreSQL.
    by = exp.Tuple(expressions=[_inner(f.expression) for f in by.expressions]) if isinstance(by, exp.Struct) else _inner(by)
    ordered = exp.Ordered(this=by, desc=isinstance(node, exp.ArgMax), nulls_first=False)
    agg = exp.ArrayAgg(this=exp.Order(this=_inner(node.this), expressions=[ordered]))
    conditions = [condition] if condition is not None else []
    if not isinstance(by, exp.Tuple):
        conditions.append(exp.Not(this=exp.Is(this=by.copy(), expression=exp.Null())))
    if conditions:
        agg = exp.Filter(this=agg, expression=exp.Where(this=exp.and_(*conditions)))
    count = node.args.get("count")
    index = exp.Slice(this=exp.Literal.number(1), expression=_inner(count)) if count is not None else exp.Literal.number(1)
    return exp.Bracket(this=exp.Paren(this=agg), expressions=[index], offset=1)


# A DuckDB struct comes back as a dict of typed values; on PostgreSQL it is built as a json object
# that also names each field's type, and decoded into the same dict (``_decode``).
_TYPES_KEY = "__cei_types__"


def _typed_json(node: exp.Struct) -> exp.Expression:
    fields = node.expressions
    if not all(isinstance(f, exp.PropertyEQ) for f in fields):
        raise PostgresWarehouseError("CEI cannot translate a struct with unnamed fields for PostgreSQL")
    args: list[exp.Expression] = []
    for field in fields:
        args += [exp.Literal.string(field.this.name), _inner(field.expression)]
    types = exp.Anonymous(this="JSON_BUILD_ARRAY", expressions=[
        exp.Cast(this=exp.Anonymous(this="PG_TYPEOF", expressions=[_inner(f.expression)]), to=exp.DataType.build("TEXT"))
        for f in fields])
    return exp.Anonymous(this="JSON_BUILD_OBJECT", expressions=args + [exp.Literal.string(_TYPES_KEY), types])


def _rewrite(node: exp.Expression) -> exp.Expression:
    """The DuckDB constructs sqlglot does not carry over to PostgreSQL."""
    if isinstance(node, exp.Select):
        _unnest_comprehensions(node)
        _expand_group_by_all(node)
        return node
    if isinstance(node, exp.Bracket) and isinstance(node.this, exp.Func):
        # PostgreSQL subscripts a function's result only in parentheses: (array_agg(x))[1:3].
        node.set("this", exp.Paren(this=node.this))
        return node
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
        return _compat("any_value", _inner(node.this.this))  # it skips nulls anyway
    if isinstance(node, exp.AnyValue):
        return _compat("any_value", _inner(node.this))
    if isinstance(node, exp.Median):
        # cei_compat.median works as an aggregate and over a window, like DuckDB's.
        return _compat("median", _inner(node.this))
    if isinstance(node, exp.Filter) and isinstance(node.this, (exp.ArgMax, exp.ArgMin)):
        return _arg_extreme(node.this, _inner(node.expression.this))
    if isinstance(node, (exp.ArgMax, exp.ArgMin)):
        return _arg_extreme(node, None)
    if isinstance(node, exp.Struct):
        return _typed_json(node)
    if isinstance(node, exp.Table) and node.db == "temp" and not node.catalog:
        node.set("db", exp.to_identifier("pg_temp"))  # DuckDB's schema of temporary tables
        return node
    if isinstance(node, exp.ArraySort):
        # list_sort(l): PostgreSQL sorts an array by unnesting it.
        return _template("SELECT ARRAY(SELECT _v FROM UNNEST(__list__) AS _s(_v) ORDER BY _v)", list=node.this).expressions[0]
    comprehension = _as_comprehension(node)
    if comprehension is not None:
        # [f(x) FOR x IN l IF c], list_transform, list_filter: an array of a subquery, in order.
        return exp.Array(expressions=[_comprehension_select(comprehension, [_inner(comprehension.this)], "_cei_list")])
    if isinstance(node, exp.GenerateSeries) and not isinstance(node.parent, (exp.Table, exp.Comprehension)):
        # range(m, n) used as a list value (not as the rows of FROM).
        return exp.Array(expressions=[exp.select("*").from_(exp.Table(this=_series(node)))])
    if isinstance(node, exp.Length):
        # DuckDB's len() measures lists and strings alike; cei_compat.len does both.
        return _compat("len", _inner(node.this))
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        args = [_inner(e) for e in node.expressions]
        if name in ("MAD", "ERROR"):
            return _compat(name, *args)
        if name == "TO_MICROSECONDS":
            return exp.Mul(this=exp.Paren(this=args[0]),
                           expression=exp.Interval(this=exp.Literal.string("1"), unit=exp.Var(this="MICROSECOND")))
        if name == "LIST_CONTAINS":
            return exp.EQ(this=args[1], expression=exp.Any(this=args[0]))
        if name == "LIST_SELECT":
            # list_select(l, positions): the elements at those (1-based) positions, in their order.
            return _template("SELECT ARRAY(SELECT (__list__)[_i] FROM UNNEST(__positions__) WITH ORDINALITY AS _s(_i, _n) "
                             "ORDER BY _n)", list=args[0], positions=args[1]).expressions[0]
        if name == "LIST_GRADE_UP":
            # list_grade_up(l): the positions that sort the list, ties in list order.
            return _template("SELECT ARRAY(SELECT _n FROM UNNEST(__list__) WITH ORDINALITY AS _s(_v, _n) ORDER BY _v, _n)",
                             list=args[0]).expressions[0]
    if isinstance(node, exp.DateBin) and not node.args.get("origin"):
        # DuckDB's time_bucket counts buckets from 2000-01-03 00:00 (a Monday).
        node.set("origin", sqlglot.parse_one("TIMESTAMP '2000-01-03 00:00:00'"))
        return node
    if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
        # PostgreSQL rounds to a number of digits only numerics; DuckDB also doubles.
        return exp.Round(this=exp.Cast(this=_inner(node.this), to=exp.DataType.build("NUMERIC")),
                         decimals=node.args["decimals"])
    return node


@dataclasses.dataclass(frozen=True)
class Translation:
    parts: tuple[str, ...]  # PostgreSQL text around the parameters
    params: tuple[int | str, ...]  # which parameter goes between parts[i] and parts[i + 1]


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> Translation:
    """One DuckDB statement batch as PostgreSQL, with its parameters marked in order."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as error:
        raise PostgresWarehouseError(f"CEI cannot translate this DuckDB SQL for PostgreSQL: {error}") from None
    keys: list[int | str] = []
    positional = 0
    rendered = []
    for statement in statements:
        def mark(node: exp.Expression) -> exp.Expression:
            nonlocal positional
            if isinstance(node, exp.Placeholder):
                name = node.name
                if name in ("", "?"):
                    keys.append(positional)
                    positional += 1
                elif name.isdigit():
                    keys.append(int(name) - 1)
                else:
                    keys.append(name)
                return _param_marker(len(keys) - 1)
            return node

        statement = statement.transform(mark)
        statement = statement.transform(_rewrite)
        # PostgreSQL before 16 wants a name for every subquery in FROM; DuckDB does not.
        for number, subquery in enumerate(statement.find_all(exp.Subquery)):
            if not subquery.alias and isinstance(subquery.parent, (exp.From, exp.Join)):
                subquery.set("alias", exp.TableAlias(this=exp.to_identifier(f"_cei_from_{number}")))
        try:
            rendered.append(statement.sql(dialect="postgres", unsupported_level=sqlglot.ErrorLevel.RAISE))
        except sqlglot.errors.SqlglotError as error:
            raise PostgresWarehouseError(f"CEI cannot translate this DuckDB SQL for PostgreSQL: {error}") from None
    text = ";\n".join(rendered)
    pieces = _MARKER.split(text)
    parts = tuple(pieces[0::2])
    order = tuple(keys[int(i)] for i in pieces[1::2])
    return Translation(parts=parts, params=order)


# --------------------------------------------------------------------------------------------
# The connection


def _numeric(value: str | None, cursor) -> int | decimal.Decimal | None:
    # DuckDB returns sums and counts of integers as Python ints, decimals as Decimal; PostgreSQL
    # types both as numeric. A numeric without a fraction part is an int here, as in DuckDB.
    if value is None:
        return None
    if "." in value or "e" in value or "N" in value:
        return decimal.Decimal(value)
    return int(value)


_NUMERIC = psycopg2.extensions.new_type((1700,), "CEI_NUMERIC", _numeric)
_JSON_TYPES = {114, 199, 3802, 3807}  # json, json[], jsonb, jsonb[]

def _decode_value(value: Any, type_name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        return _decode(value)
    if type_name in ("numeric",):
        return value if isinstance(value, decimal.Decimal) else decimal.Decimal(value)
    if type_name in ("double precision", "real"):
        return float(value)
    if type_name in ("bigint", "integer", "smallint"):
        return int(value)
    if type_name == "date":
        return dt.date.fromisoformat(value)
    if type_name.startswith("timestamp"):
        return dt.datetime.fromisoformat(value)
    return value


def _decode(value: Any) -> Any:
    """Structs built by ``_typed_json`` back into the dicts DuckDB returns, in lists too."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict) and _TYPES_KEY in value:
        types = value[_TYPES_KEY]
        fields = [k for k in value if k != _TYPES_KEY]
        return {k: _decode_value(value[k], t) for k, t in zip(fields, types)}
    return value


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=decimal.Decimal)


# PostgreSQL type OIDs to the DuckDB types ``df()`` goes through, so frames match DuckDB's.
_DUCKDB_TYPES = {
    16: "BOOLEAN", 20: "BIGINT", 21: "BIGINT", 23: "BIGINT", 700: "DOUBLE", 701: "DOUBLE", 1700: "DOUBLE",
    25: "VARCHAR", 1043: "VARCHAR", 1042: "VARCHAR", 19: "VARCHAR", 1082: "DATE", 1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ", 1083: "TIME",
}


class PostgresResult:
    """The rows of one statement, read like DuckDB's connection after ``execute``."""

    def __init__(self, description, rows: list[tuple] | None):
        self.description = description
        self._rows = rows or []
        self._at = 0

    def fetchall(self) -> list[tuple]:
        rows, self._at = self._rows[self._at:], len(self._rows)
        return rows

    def fetchone(self) -> tuple | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchmany(self, size: int = 1) -> list[tuple]:
        rows = self._rows[self._at:self._at + size]
        self._at += len(rows)
        return rows

    def df(self):
        """A pandas frame with the dtypes DuckDB's ``df()`` gives (DECIMAL as float64, dates as
        datetime64), built by DuckDB itself from the rows."""
        import pyarrow as pa

        names = [d[0] for d in self.description or []]
        columns = {}
        rows = self._rows[self._at:]
        for i, d in enumerate(self.description or []):
            kind = _DUCKDB_TYPES.get(d[1], "VARCHAR")
            values = [r[i] for r in rows]
            if kind == "DOUBLE":
                values = [None if v is None else float(v) for v in values]
                columns[names[i]] = pa.array(values, type=pa.float64())
            elif kind == "BIGINT":
                columns[names[i]] = pa.array(values, type=pa.int64())
            elif kind == "BOOLEAN":
                columns[names[i]] = pa.array(values, type=pa.bool_())
            elif kind == "DATE":
                columns[names[i]] = pa.array(values, type=pa.date32())
            elif kind == "TIMESTAMP":
                columns[names[i]] = pa.array(values, type=pa.timestamp("us"))
            else:
                columns[names[i]] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        table = pa.table(columns) if columns else pa.table({})
        scratch = duckdb.connect()
        try:
            return scratch.from_arrow(table).df()
        finally:
            scratch.close()

    fetchdf = df


class PostgresConnection:
    """A PostgreSQL session that reads and writes DuckDB SQL (the subset of DuckDB's
    ``DuckDBPyConnection`` CEI uses). Autocommit: each statement stands alone unless the caller
    opens a transaction with ``BEGIN``, as on DuckDB."""

    # ingestion.load_dataset hands the landing files to DuckDB, then the rows to this warehouse.
    parses_landing_with_duckdb = True

    def __init__(self, target: PostgresTarget, application: str = "cei"):
        self.target = target
        self._conn = _connect(target, application)
        psycopg2.extensions.register_type(_NUMERIC, self._conn)
        psycopg2.extras.register_default_json(self._conn, loads=_loads)
        with self._conn.cursor() as cursor:
            # Timestamps are naive UTC in the warehouse, as on DuckDB. Readers are not put in
            # read-only transactions: DuckDB's read-only connections may create temporary
            # tables (the checks share intermediate results that way), PostgreSQL's may not.
            cursor.execute("SET TIME ZONE 'UTC'")
        # Parameters become literals through psycopg2's own quoting (mogrify), which needs a
        # cursor of the connection (its encoding and adapters) but runs nothing: one serves all.
        self._literals = self._conn.cursor()
        self._last: PostgresResult | None = None

    @property
    def raw(self):
        """The psycopg2 connection, for COPY and for code that speaks PostgreSQL itself."""
        return self._conn

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None) -> PostgresResult:
        text = self._bind(translate(sql), parameters)
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(text)
                rows = cursor.fetchall() if cursor.description is not None else None
                if rows and any(code in _JSON_TYPES for code in (d[1] for d in cursor.description)):
                    rows = [tuple(_decode(v) for v in row) for row in rows]
                self._last = PostgresResult(cursor.description, rows)
        except psycopg2.Error as error:
            log.debug("PostgreSQL statement failed:\n%s", text)
            message = (error.pgerror or str(error)).strip()
            raise PostgresWarehouseError(message) from None
        return self._last

    def sql(self, query: str) -> PostgresResult:
        return self.execute(query)

    def _bind(self, translation: Translation, parameters) -> str:
        if not translation.params:
            return translation.parts[0]
        if parameters is None:
            raise PostgresWarehouseError("the statement has parameters but none were given")
        values = []
        for key in translation.params:
            try:
                values.append(parameters[key])
            except (KeyError, IndexError, TypeError):
                raise PostgresWarehouseError(f"no value given for the statement's parameter {key!r}") from None
        literals = [self._literals.mogrify("%s", (_adapt(v),)).decode() for v in values]
        out = [translation.parts[0]]
        for literal, part in zip(literals, translation.parts[1:]):
            out += [literal, part]
        return "".join(out)

    # DuckDB's connection reads the last result from the connection itself too.
    def fetchall(self) -> list[tuple]:
        return self._last.fetchall() if self._last else []

    def fetchone(self):
        return self._last.fetchone() if self._last else None

    def df(self):
        return self._last.df()

    fetchdf = df

    @property
    def description(self):
        return self._last.description if self._last else None

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        if self._conn.status != psycopg2.extensions.STATUS_READY:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.status != psycopg2.extensions.STATUS_READY:
            self.execute("ROLLBACK")

    def close(self) -> None:
        if not self._conn.closed:
            self._conn.close()

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _adapt(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


# --------------------------------------------------------------------------------------------
# What PostgreSQL lacks of DuckDB, as SQL functions

COMPAT_SQL = rf"""
CREATE SCHEMA IF NOT EXISTS {COMPAT_SCHEMA};

-- DuckDB's median and mad (median absolute deviation) are ordinary aggregates, usable over a
-- window; PostgreSQL's percentile_cont is not. These collect the values and interpolate like
-- DuckDB's quantile_cont(0.5): doubles give doubles, numerics give numerics.
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.median_of(v float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(v) AS x
$$;
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.median_of(v numeric[]) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sorted[lo] + (sorted[hi] - sorted[lo]) * frac
    FROM (SELECT array_agg(x ORDER BY x) AS sorted, count(*) AS n FROM unnest(v) AS x WHERE x IS NOT NULL) AS s,
         LATERAL (SELECT floor((n - 1) / 2.0)::int + 1 AS lo, ceil((n - 1) / 2.0)::int + 1 AS hi,
                         (n - 1) / 2.0 - floor((n - 1) / 2.0) AS frac) AS k
    WHERE n > 0
$$;
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.mad_of(v float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT {COMPAT_SCHEMA}.median_of(array_agg(abs(x - m)))
    FROM unnest(v) AS x, (SELECT {COMPAT_SCHEMA}.median_of(v) AS m) AS c WHERE x IS NOT NULL
$$;
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.mad_of(v numeric[]) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT {COMPAT_SCHEMA}.median_of(array_agg(abs(x - m)))
    FROM unnest(v) AS x, (SELECT {COMPAT_SCHEMA}.median_of(v) AS m) AS c WHERE x IS NOT NULL
$$;
CREATE OR REPLACE AGGREGATE {COMPAT_SCHEMA}.median(float8) (
    SFUNC = array_append, STYPE = float8[], FINALFUNC = {COMPAT_SCHEMA}.median_of);
CREATE OR REPLACE AGGREGATE {COMPAT_SCHEMA}.median(numeric) (
    SFUNC = array_append, STYPE = numeric[], FINALFUNC = {COMPAT_SCHEMA}.median_of);
CREATE OR REPLACE AGGREGATE {COMPAT_SCHEMA}.mad(float8) (
    SFUNC = array_append, STYPE = float8[], FINALFUNC = {COMPAT_SCHEMA}.mad_of);
CREATE OR REPLACE AGGREGATE {COMPAT_SCHEMA}.mad(numeric) (
    SFUNC = array_append, STYPE = numeric[], FINALFUNC = {COMPAT_SCHEMA}.mad_of);

-- any_value (PostgreSQL 16 has it; 15 does not): the first value that is not null.
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.keep_first(state anyelement, value anyelement) RETURNS anyelement
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT coalesce(state, value)';

-- DuckDB's len() of a list or a string.
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.len(v anyarray) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT coalesce(cardinality(v), 0)';
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.len(v text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT length(v)';
CREATE OR REPLACE AGGREGATE {COMPAT_SCHEMA}.any_value(anyelement) (
    SFUNC = {COMPAT_SCHEMA}.keep_first, STYPE = anyelement);

-- DuckDB's error(message): fail the statement with the message (dbt's recon_rules uses it to
-- stop every comparison when asset_checks/reconciliation.yaml is invalid).
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.error(message text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$ BEGIN RAISE EXCEPTION '%', message; END $$;

-- %.15g of a number, as DuckDB's format('{{:.15g}}', x) prints it.
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.format_g15(v numeric) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    e int;
    r numeric;
    mantissa numeric;
BEGIN
    IF v IS NULL THEN RETURN NULL; END IF;
    IF v = 0 THEN RETURN '0'; END IF;
    e := floor(log(abs(v)));
    r := round(v, 14 - e);
    IF abs(r) >= power(10::numeric, e + 1) THEN e := e + 1; r := round(v, 14 - e); END IF;
    IF e < -4 OR e >= 15 THEN
        mantissa := trim_scale(round(r / power(10::numeric, e), 14));
        RETURN mantissa::text || 'e' || CASE WHEN e < 0 THEN '-' ELSE '+' END || lpad(abs(e)::text, 2, '0');
    END IF;
    RETURN trim_scale(r)::text;
END $$;

-- DuckDB's format(template, a, b, ...) with fmt placeholders {{}}, {{:.15g}}, {{:.Nf}} and {{:,.Nf}},
-- the arguments passed as one json array (dbt's cei_format macro builds it). NULL when any
-- argument is NULL, as in DuckDB.
CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.format(template text, args json) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    literals text[] := regexp_split_to_array(template, '\{{[^{{}}]*\}}');
    spec text;
    i int := 0;
    arg json;
    kind text;
    value text;
    digits int;
    result text := literals[1];
BEGIN
    FOR spec IN SELECT m[1] FROM regexp_matches(template, '\{{([^{{}}]*)\}}', 'g') AS m LOOP
        arg := args -> i;
        kind := json_typeof(arg);
        IF arg IS NULL OR kind = 'null' THEN RETURN NULL; END IF;
        value := CASE WHEN kind = 'string' THEN arg #>> '{{}}' ELSE arg::text END;
        IF kind = 'number' THEN
            IF spec = ':.15g' THEN
                value := {COMPAT_SCHEMA}.format_g15(value::numeric);
            ELSIF spec ~ '^:,?\.[0-9]+f$' THEN
                digits := substring(spec FROM '\.([0-9]+)f')::int;
                value := to_char(round(value::numeric, digits),
                                 CASE WHEN spec LIKE ':,%' THEN 'FM999,999,999,999,999,999,999,999,990' ELSE 'FM999999999999999999999999990' END
                                 || CASE WHEN digits > 0 THEN '.' || repeat('0', digits) ELSE '' END);
                -- printf keeps the sign of a negative number that rounds to zero (-0.00).
                IF (arg::text)::numeric < 0 AND value !~ '^-' THEN value := '-' || value; END IF;
            ELSIF spec = '' AND value ~ '[.eE]' THEN
                -- DuckDB prints a decimal or double as the shortest double that reads back.
                value := (value::float8)::text;
                IF value ~ '^-?[0-9]+$' THEN value := value || '.0'; END IF;
            END IF;
        END IF;
        result := result || value || coalesce(literals[i + 2], '');
        i := i + 1;
    END LOOP;
    RETURN result;
END $$;

CREATE OR REPLACE FUNCTION {COMPAT_SCHEMA}.version() RETURNS int
LANGUAGE sql IMMUTABLE AS 'SELECT {COMPAT_VERSION}';
"""

_installed: set[str] = set()
_installed_guard = threading.Lock()


def ensure_compat_functions(conn: PostgresConnection) -> None:
    """Install or update cei_compat once per process and warehouse (idempotent, serialized)."""
    key = conn.target.shown
    with _installed_guard:
        if key in _installed:
            return
    raw = conn.raw
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.proname = 'version'", (COMPAT_SCHEMA,))
        present = cursor.fetchone()[0] > 0
        current = None
        if present:
            cursor.execute(f"SELECT {COMPAT_SCHEMA}.version()")
            current = cursor.fetchone()[0]
        if current != COMPAT_VERSION:
            # One installer at a time: concurrent CREATE OR REPLACE of one function fails.
            cursor.execute("BEGIN")
            try:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, _INSTALL_KEY))
                cursor.execute(COMPAT_SQL)
                cursor.execute("COMMIT")
            except psycopg2.Error as error:
                cursor.execute("ROLLBACK")
                hint = "; the warehouse user needs CREATE on the database" if error.pgcode == "42501" else ""
                raise PostgresWarehouseError(
                    f"cannot install CEI's SQL functions in {conn.target.shown} (schema {COMPAT_SCHEMA}): "
                    f"{(error.pgerror or str(error)).strip()}{hint}"
                ) from None
            log.info("installed CEI's SQL functions (version %s) in %s", COMPAT_VERSION, conn.target.shown)
    with _installed_guard:
        _installed.add(key)


# --------------------------------------------------------------------------------------------
# The writers' lock

@contextlib.contextmanager
def advisory_lock(target: PostgresTarget, exclusive: bool, timeout_seconds: float = 900.0) -> Iterator[None]:
    """CEI's writers' lock on a PostgreSQL warehouse: a session advisory lock, held by a
    connection of its own for the duration, re-entrant within a process (dbt inside a step)."""
    wanted = "exclusive" if exclusive else "shared"

    def acquire():
        conn = _connect(target, "cei-lock")
        function = "pg_try_advisory_lock" if exclusive else "pg_try_advisory_lock_shared"
        try:
            with conn.cursor() as cursor:
                def try_once() -> bool:
                    cursor.execute(f"SELECT {function}(%s, %s)", WRITERS_LOCK)
                    return bool(cursor.fetchone()[0])

                wait_for_lock(try_once, wanted=wanted, where=target.shown, timeout_seconds=timeout_seconds,
                              holder="writing the warehouse (a long run or dbt build?)")
        except BaseException:
            conn.close()
            raise
        return conn

    # Closing the connection ends the session, and with it the lock.
    with process_lock(f"postgres:{target.shown}", exclusive, acquire, lambda conn: conn.close()):
        yield


# --------------------------------------------------------------------------------------------
# Landing files into raw


def copy_from_duckdb(duck: duckdb.DuckDBPyConnection, query: str, pg: PostgresConnection, table: str,
                     columns: Sequence[str]) -> int:
    """Copy the rows of a DuckDB query into a PostgreSQL table with COPY FROM STDIN (CSV written
    by DuckDB: exact decimals, shortest doubles, NULL as an empty field, '' quoted)."""
    with tempfile.TemporaryDirectory(prefix="cei-copy-") as folder:
        path = Path(folder) / "rows.csv"
        duck.execute(f"COPY ({query}) TO '{path}' (FORMAT csv, HEADER false, QUOTE '\"', NULL '', FORCE_QUOTE *)")
        column_sql = ", ".join(f'"{c}"' for c in columns)
        try:
            with pg.raw.cursor() as cursor, path.open("r", encoding="utf-8") as rows:
                cursor.copy_expert(
                    f"COPY {table} ({column_sql}) FROM STDIN WITH (FORMAT csv, NULL '', FORCE_NULL ({column_sql}))",
                    rows)
                return cursor.rowcount
        except psycopg2.Error as error:
            raise PostgresWarehouseError(f"cannot copy into {table}: {(error.pgerror or str(error)).strip()}") from None


def load_dataset_into_postgres(conn: PostgresConnection, dataset, landing_root: Path,
                               business_date: dt.date | None = None):
    """``ingestion.load_dataset`` on a PostgreSQL warehouse: DuckDB parses the files (with the
    precise problems) into a scratch table, whose rows then replace the partition in PostgreSQL
    in one transaction. Returns the same ``IngestResult``."""
    from cei_assets import ingestion

    started = time.perf_counter()
    scratch = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                 "autoload_known_extensions": False})
    try:
        scratch.execute("SET TimeZone = 'UTC'")
        result = ingestion.load_dataset(scratch, dataset, landing_root, business_date)
        table = ingestion.raw_table(dataset)
        columns = [r[0] for r in scratch.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [ingestion.RAW_SCHEMA, dataset.name]).fetchall()]
        ingestion.ensure_raw_table(conn, dataset)
        conn.execute("BEGIN")
        try:
            if dataset.daily:
                conn.execute(f"DELETE FROM {table} WHERE business_date = ?", [business_date])
            else:
                conn.execute(f"DELETE FROM {table}")
            copied = copy_from_duckdb(scratch, f"SELECT * FROM {table}", conn, table, columns)
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
    finally:
        scratch.close()
    if copied != result.rows:  # pragma: no cover - COPY reports what it wrote
        raise PostgresWarehouseError(f"{table}: DuckDB parsed {result.rows} rows but {copied} reached PostgreSQL")
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------------------------
# Soda


_SODA_TYPES = {"varchar": "text", "double": "double precision"}


@contextlib.contextmanager
def soda_data_source(conn: PostgresConnection, name: str, contract_path: Path) -> Iterator[tuple[Any, Path]]:
    """A Soda data source on the same PostgreSQL warehouse, and the contract rewritten for it:
    Soda names a PostgreSQL dataset data_source/database/schema/table (DuckDB's has no database)
    and compares column types by their PostgreSQL names."""
    from soda_postgres.common.data_sources.postgres_data_source import PostgresDataSourceImpl
    from soda_postgres.common.data_sources.postgres_data_source_connection import PostgresDataSource

    target = conn.target
    model = PostgresDataSource(name=name, connection={
        "host": target.host, "port": target.port, "database": target.dbname, "user": target.user,
        "password": target.password, "sslmode": "prefer",
    })
    data_source = PostgresDataSourceImpl(data_source_model=model)
    text = contract_path.read_text(encoding="utf-8")
    rewritten = re.sub(rf"^dataset:\s*{re.escape(name)}/", f"dataset: {name}/{target.dbname}/", text, count=1, flags=re.M)
    # The contracts spell types as DuckDB does; the books' strings are text and their doubles
    # double precision on PostgreSQL (DuckDB's VARCHAR and DOUBLE).
    for duckdb_type, postgres_type in _SODA_TYPES.items():
        rewritten = re.sub(rf"(\bdata_type:\s*){duckdb_type}\s*$", rf"\g<1>{postgres_type}", rewritten, flags=re.M | re.I)
    try:
        with tempfile.TemporaryDirectory(prefix="cei-soda-") as folder:
            path = Path(folder) / contract_path.name
            path.write_text(rewritten, encoding="utf-8")
            yield data_source, path
    finally:
        with contextlib.suppress(Exception):
            data_source.close_connection()
