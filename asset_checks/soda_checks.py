"""Soda Core v4 data contracts on the books, in the one result shape (``CheckOutcome``).

The contracts live in ``asset_checks/soda/<table>.yaml``, one per books table, in Soda's own
contract language: schema, missing values on the keys, duplicates on (business_date, account,
symbol or currency), valid ranges, row counts and a few row identities. Every contract filters
on ``business_date = DATE '${var.BUSINESS_DATE}'``: the date being checked is passed to Soda as a
variable, so each check judges one trading date.

How Soda runs here (soda-core 4.28, soda-duckdb 4.28): the warehouse connection that
``WarehouseResource.read()`` opened under the cross-process lock is handed to Soda with
``DuckDBDataSourceImpl.from_existing_cursor(conn, "warehouse")`` and each contract is verified
with ``verify_contract_locally(data_sources=[...], contract_file_path=..., variables=...)``.
Soda runs its queries on that connection (it never opens the file itself, so the lock holds)
and leaves the connection open. On the PostgreSQL warehouse (``CEI_WAREHOUSE_URL``) soda-postgres
opens its own session on the same database instead (``_data_source``). Nothing is sent anywhere: telemetry is switched off before
Soda is imported, and no Soda Cloud configuration is ever given.

Soda reports counts only. For a failing check this module reads up to 20 failing rows itself,
with SQL built from the same contract entry (the check's condition under the contract's filter),
so a responder sees which accounts and symbols are wrong.

Each contract check becomes one Dagster asset check on the books asset, named
``soda_<type>[_<column>][_<qualifier>]`` (``soda_missing_account``, ``soda_duplicate``,
``soda_failed_rows_rolls_forward``). Whether it blocks comes from the check's ``attributes``
in the contract (``blocking`` and ``reason``); the names and flags are read from the YAML
when the definitions load, without importing Soda or touching the warehouse.
"""


import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

# Before anything can import Soda: its anonymous usage telemetry would post to collect.soda.io.
os.environ["SODA_CORE_TELEMETRY_ENABLED"] = "false"

import dagster as dg  # noqa: E402
import yaml  # noqa: E402

from asset_checks.dagster_checks import outcome_to_result  # noqa: E402
from asset_checks.outcome import MAX_SAMPLE_ROWS, CheckOutcome, list_for_sentence  # noqa: E402
from cei_assets.check_specs import check_spec  # noqa: E402
from cei_assets.resources import WarehouseResource  # noqa: E402
from cei_assets.trading_calendar import trading_day_partitions  # noqa: E402

CONTRACTS_DIR = Path(__file__).resolve().parent / "soda"
SODA_TABLES: tuple[str, ...] = ("positions", "cash_balances", "market_values", "daily_pnl")
DATA_SOURCE_NAME = "warehouse"
BOOKS_SCHEMA = "books"
DATE_VARIABLE = "BUSINESS_DATE"
ENGINE = "soda"

# Columns that identify a failing row of a books table, shown first in samples.
_SAMPLE_KEYS = ("business_date", "account", "symbol", "currency")
_AFFECTED = ("account", "symbol", "currency")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]+")
_VARIABLE = re.compile(r"\$\{ *var\.([A-Za-z_][A-Za-z_0-9]*) *\}")


class ContractError(ValueError):
    """A contract file that cannot become Dagster checks; the message names the file and the check."""


@dataclasses.dataclass(frozen=True)
class ContractCheck:
    """One check of a contract as written, with what CEI needs to report it."""

    table: str
    type: str  # Soda's check type: missing, invalid, duplicate, schema, row_count, failed_rows, ...
    column: str | None
    qualifier: str | None
    body: dict  # the check's properties as written (name, attributes and qualifier removed)
    title: str  # the check's `name` in the contract
    blocking: bool
    reason: str | None
    line: int

    @property
    def check_name(self) -> str:
        """The Dagster check name: soda_<type>[_<column>][_<qualifier>]."""
        return soda_check_name(self.type, self.column, self.qualifier)

    @property
    def severity(self) -> str:
        return "ERROR" if self.blocking else "WARN"

    @property
    def as_written(self) -> str:
        where = f" on {self.column}" if self.column else ""
        body = f" {json.dumps(self.body, sort_keys=True, default=str)}" if self.body else ""
        return f"soda {self.type}{where}{body}"


@dataclasses.dataclass(frozen=True)
class Contract:
    table: str
    path: Path
    filter: str
    checks: tuple[ContractCheck, ...]

    @property
    def relation(self) -> str:
        return f"{BOOKS_SCHEMA}.{self.table}"

    def resolved_filter(self, business_date: dt.date) -> str:
        return _VARIABLE.sub(lambda m: business_date.isoformat() if m.group(1) == DATE_VARIABLE else m.group(0),
                             self.filter)


def soda_check_name(check_type: str, column: str | None, qualifier: str | None) -> str:
    parts = [p for p in ("soda", check_type, column, qualifier) if p]
    return _NAME_CHARS.sub("_", "_".join(str(p) for p in parts))


def contract_path(table: str) -> Path:
    return CONTRACTS_DIR / f"{table}.yaml"


@lru_cache(maxsize=None)
def load_contract(table: str) -> Contract:
    """The contract of a books table, read as plain YAML (no Soda import): its checks and flags."""
    path = contract_path(table)
    if not path.is_file():
        raise ContractError(f"no Soda contract for books.{table}: expected {path}")
    text = path.read_text(encoding="utf-8")
    try:
        document = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ContractError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{path}: a contract is a YAML mapping with dataset, columns and checks")
    expected_dataset = f"{DATA_SOURCE_NAME}/{BOOKS_SCHEMA}/{table}"
    if data.get("dataset") != expected_dataset:
        raise ContractError(f"{path}: dataset must be {expected_dataset!r}, found {data.get('dataset')!r}")
    contract_filter = str(data.get("filter") or "")
    if f"var.{DATE_VARIABLE}" not in contract_filter.replace(" ", ""):
        raise ContractError(f"{path}: the filter must select one trading date with ${{var.{DATE_VARIABLE}}}")

    entries = [(entry, column.get("name")) for column in data.get("columns") or [] for entry in column.get("checks") or []]
    entries += [(entry, None) for entry in data.get("checks") or []]
    lines = _check_lines(document)
    if len(lines) != len(entries):  # pragma: no cover - both walks read the same document
        lines = [0] * len(entries)
    checks = [_contract_check(path, table, entry, column, line) for (entry, column), line in zip(entries, lines)]

    seen: dict[str, ContractCheck] = {}
    for check in checks:
        if check.check_name in seen:
            raise ContractError(
                f"{path}: line {check.line} repeats check {check.check_name} (line {seen[check.check_name].line}); "
                "give one of them a distinct `qualifier`"
            )
        seen[check.check_name] = check
    return Contract(table=table, path=path, filter=contract_filter, checks=tuple(checks))


def _contract_check(path: Path, table: str, entry: Any, column: str | None, line: int) -> ContractCheck:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ContractError(f"{path}: each check is a mapping of one check type, found {entry!r}")
    (check_type, body), = entry.items()
    body = dict(body or {})
    attributes = body.pop("attributes", None) or {}
    if not isinstance(attributes.get("blocking"), bool):
        raise ContractError(
            f"{path}: line {line}: {check_type}{' on ' + column if column else ''} needs "
            "attributes: {blocking: true|false, reason: ...}"
        )
    if check_type == "failed_rows" and not body.get("qualifier"):
        raise ContractError(f"{path}: line {line}: a failed_rows check needs a qualifier that names it")
    qualifier = body.pop("qualifier", None)
    title = str(body.pop("name", "") or f"{check_type} {column or ''}".strip())
    return ContractCheck(
        table=table,
        type=str(check_type),
        column=column,
        qualifier=str(qualifier) if qualifier is not None else None,
        body=body,
        title=title,
        blocking=attributes["blocking"],
        reason=attributes.get("reason"),
        line=line,
    )


def _check_lines(document) -> list[int]:
    """1-based line of every check entry, in the order columns' checks then dataset checks."""
    def value(node, key):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if getattr(k, "value", None) == key:
                    return v
        return None

    def items(node):
        return node.value if isinstance(node, yaml.SequenceNode) else []

    lines = []
    for column in items(value(document, "columns")):
        lines += [entry.start_mark.line + 1 for entry in items(value(column, "checks"))]
    lines += [entry.start_mark.line + 1 for entry in items(value(document, "checks"))]
    return lines


def contract_checks(table: str) -> tuple[ContractCheck, ...]:
    return load_contract(table).checks


# --------------------------------------------------------------------------------------------
# Running Soda


def verify_contracts(conn_or_path, business_date: dt.date, tables: tuple[str, ...] | list[str] | None = None
                     ) -> dict[str, list[CheckOutcome]]:
    """Verify the books contracts for one trading date; one CheckOutcome per contract check.

    ``conn_or_path`` is an open DuckDB connection to the warehouse (used as it is) or the path of
    the warehouse file, which is then opened read-only under the warehouse lock.
    """
    tables = tuple(tables) if tables else SODA_TABLES
    if isinstance(conn_or_path, (str, os.PathLike)):
        warehouse = WarehouseResource(path=str(conn_or_path))
        with warehouse.read() as conn:
            return verify_contracts(conn, business_date, tables)
    return {table: verify_contract(conn_or_path, table, business_date) for table in tables}


def verify_contract(conn, table: str, business_date: dt.date) -> list[CheckOutcome]:
    contract = load_contract(table)
    if not _table_exists(conn, contract.relation):
        text = f"{contract.relation} does not exist in the warehouse: the books were not built"
        return [_outcome(check, False, text, business_date) for check in contract.checks]

    from soda_core.contracts.api.verify_api import verify_contract_locally

    try:
        with _data_source(conn, contract.path) as (data_source, contract_path):
            session = verify_contract_locally(
                data_sources=[data_source],
                contract_file_path=str(contract_path),
                variables={DATE_VARIABLE: business_date.isoformat()},
            )
    except Exception as error:  # fail closed with the reason, never crash the check step
        text = f"Soda could not verify {contract.path.name} on {contract.relation} for {business_date}: {error}"
        return [_outcome(check, False, text, business_date) for check in contract.checks]
    errors = [e for e in session.get_errors() if e]
    results = {}
    for contract_result in session.contract_verification_results:
        for check_result in contract_result.check_results:
            check = check_result.check
            results[soda_check_name(check.type, check.column_name, check.qualifier)] = check_result

    outcomes = []
    for check in contract.checks:
        result = results.get(check.check_name)
        if result is None:
            why = errors[0] if errors else "Soda returned no result for it"
            outcomes.append(_outcome(check, False, f"Soda could not run '{check.title}' on {contract.relation} "
                                                   f"for {business_date}: {why}", business_date))
            continue
        outcomes.append(_judge(conn, contract, check, result, errors, business_date))
    return outcomes


@contextlib.contextmanager
def _data_source(conn, contract_path: Path):
    """Soda's data source on the warehouse ``conn`` belongs to, and the contract to verify with it.

    DuckDB: the open connection itself. PostgreSQL (soda-postgres): a session of Soda's own on
    the same database, and the contract with its dataset named the PostgreSQL way.
    """
    from cei_assets.warehouse_postgres import PostgresConnection, soda_data_source

    if isinstance(conn, PostgresConnection):
        with soda_data_source(conn, DATA_SOURCE_NAME, contract_path) as (data_source, path):
            yield data_source, path
        return
    from soda_duckdb.common.data_sources.duckdb_data_source import DuckDBDataSourceImpl

    yield DuckDBDataSourceImpl.from_existing_cursor(conn, DATA_SOURCE_NAME), contract_path


def _table_exists(conn, relation: str) -> bool:
    schema, _, name = relation.partition(".")
    return bool(conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
    ).fetchone()[0])


def _judge(conn, contract: Contract, check: ContractCheck, result, errors: list[str],
           business_date: dt.date) -> CheckOutcome:
    outcome_name = result.outcome.name  # PASSED, FAILED, WARN, NOT_EVALUATED (or EXCLUDED: not run, fails closed)
    diagnostics = dict(result.diagnostic_metric_values or {})
    total = _int(diagnostics.get("check_rows_tested", diagnostics.get("dataset_rows_tested")))
    failing = _failing_count(check, result, diagnostics)
    where = f"{contract.relation} for {business_date}"
    extra = {
        "soda_outcome": outcome_name,
        "soda_check": check.title,
        "soda_identity": result.check.identity,
        "contract": f"asset_checks/soda/{contract.path.name}",
        "diagnostics": {k: v for k, v in diagnostics.items() if v is not None},
    }

    if outcome_name == "PASSED":
        counted = f" on {total:,} row(s) of" if total is not None else " on"
        text = f"{check.title}: passed{counted} {where}"
        outcome = _outcome(check, True, text, business_date, total=total or 0, extra=extra)
        return outcome

    if outcome_name == "NOT_EVALUATED":
        why = errors[0].splitlines()[0] if errors else "no measurement came back"
        text = f"Soda could not evaluate '{check.title}' on {where}: {why}"
        return _outcome(check, False, text, business_date, total=total or 0, extra=extra)

    samples, affected = [], {}
    condition_sql = None
    try:
        samples, affected, condition_sql = _failing_rows(conn, contract, check, business_date)
    except Exception as error:  # the sample is a courtesy; the verdict stands without it
        extra["sample_error"] = str(error)
    if condition_sql:
        extra["failing_rows_sql"] = condition_sql
    text = _failure_sentence(check, result, failing, total, contract.relation, business_date, affected)
    outcome = _outcome(check, False, text, business_date, failing=failing, total=total or 0,
                       samples=samples, affected=affected, extra=extra)
    if outcome_name == "WARN":
        outcome.severity = "WARN"
    return outcome


# The diagnostic that counts a check's failing rows (or schema differences).
_COUNTED_BY = {"missing": "missing_count", "invalid": "invalid_count", "duplicate": "duplicate_count",
               "failed_rows": "failed_rows_count", "schema": "schema_events_count"}


def _failing_count(check: ContractCheck, result, diagnostics: dict) -> int:
    key = _COUNTED_BY.get(check.type)
    return (_int(diagnostics.get(key)) or 0) if key else 0


def _failure_sentence(check: ContractCheck, result, failing: int, total: int | None, relation: str,
                      business_date: dt.date, affected: dict) -> str:
    where = f"{relation} for {business_date}"
    of_total = f" of {total:,}" if total is not None else ""
    if check.type == "missing":
        text = f"{failing:,}{of_total} row(s) of {where} have no {check.column}"
    elif check.type == "invalid":
        text = f"{failing:,}{of_total} row(s) of {where} have an invalid {check.column} ({_validity(check.body)})"
    elif check.type == "duplicate":
        columns = check.body.get("columns") or [check.column]
        text = f"{failing:,} duplicate row(s) in {where} on ({', '.join(columns)})"
    elif check.type == "failed_rows":
        text = f"{failing:,}{of_total} row(s) of {where} break '{check.title}'"
    elif check.type == "schema":
        text = f"{relation} does not match its contract: {_schema_differences(result)}"
    elif check.type == "row_count":
        text = f"{where} has {_int(result.threshold_value) or 0:,} row(s); {check.title.lower()} ({_threshold(result)})"
    else:
        value = result.threshold_value
        text = f"'{check.title}' failed on {where}: measured {value} ({_threshold(result)})"
    if affected.get("account"):
        text += f"; accounts: {list_for_sentence(affected['account'])}"
    if affected.get("symbol"):
        text += f"; symbols: {list_for_sentence(affected['symbol'])}"
    elif affected.get("currency"):
        text += f"; currencies: {list_for_sentence(affected['currency'])}"
    return text


def _validity(body: dict) -> str:
    parts = []
    if "valid_min" in body:
        parts.append(f">= {body['valid_min']}")
    if "valid_max" in body:
        parts.append(f"<= {body['valid_max']}")
    if "valid_values" in body:
        parts.append(f"one of {', '.join(str(v) for v in body['valid_values'])}")
    if "invalid_values" in body:
        parts.append(f"not {', '.join(str(v) for v in body['invalid_values'])}")
    for key in ("valid_format", "invalid_format"):
        if key in body:
            fmt = body[key] or {}
            parts.append(f"{'' if key == 'valid_format' else 'not '}{fmt.get('name') or 'format'} {fmt.get('regex')}")
    return "must be " + " and ".join(parts) if parts else "see the contract"


def _threshold(result) -> str:
    threshold = result.check.threshold
    if threshold is None:
        return "no threshold"
    words = {
        "must_be": "must be", "must_not_be": "must not be", "must_be_greater_than": "must be >",
        "must_be_greater_than_or_equal": "must be >=", "must_be_less_than": "must be <",
        "must_be_less_than_or_equal": "must be <=",
    }
    parts = [f"{text} {getattr(threshold, key)}" for key, text in words.items() if getattr(threshold, key, None) is not None]
    return " and ".join(parts) or str(threshold)


def _schema_differences(result) -> str:
    parts = []
    missing = list(getattr(result, "expected_column_names_not_actual", None) or [])
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    for mismatch in getattr(result, "column_data_type_mismatches", None) or []:
        parts.append(f"column {mismatch.column} is {mismatch.actual_data_type}, the contract says {mismatch.expected_data_type}")
    extra = list(getattr(result, "actual_column_names_not_expected", None) or [])
    if extra:
        parts.append(f"unexpected column(s) {', '.join(extra)}")
    if getattr(result, "are_columns_out_of_order", False):
        parts.append("columns out of order")
    return "; ".join(parts) or "see the Soda diagnostics"


# --------------------------------------------------------------------------------------------
# Failing rows: Soda counts, CEI shows which rows


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def failing_condition(check: ContractCheck) -> str | None:
    """SQL that is true for a row the check counts as failing; None for table-level checks."""
    column = _quote(check.column) if check.column else None
    body = check.body
    condition = None
    if check.type == "missing" and column:
        values = body.get("missing_values") or []
        condition = f"{column} IS NULL"
        if values:
            condition += f" OR {column} IN ({', '.join(_literal(v) for v in values)})"
        if body.get("missing_format", {}).get("regex"):
            condition += f" OR regexp_matches({column}::VARCHAR, {_literal(body['missing_format']['regex'])})"
    elif check.type == "invalid" and column:
        valid = []
        if "valid_min" in body:
            valid.append(f"{column} >= {_literal(body['valid_min'])}")
        if "valid_max" in body:
            valid.append(f"{column} <= {_literal(body['valid_max'])}")
        if "valid_values" in body:
            valid.append(f"{column} IN ({', '.join(_literal(v) for v in body['valid_values'])})")
        if (body.get("valid_format") or {}).get("regex"):
            valid.append(f"regexp_matches({column}::VARCHAR, {_literal(body['valid_format']['regex'])})")
        for key, op in (("valid_min_length", ">="), ("valid_max_length", "<="), ("valid_length", "=")):
            if key in body:
                valid.append(f"length({column}::VARCHAR) {op} {int(body[key])}")
        invalid = []
        if "invalid_values" in body:
            invalid.append(f"{column} IN ({', '.join(_literal(v) for v in body['invalid_values'])})")
        if (body.get("invalid_format") or {}).get("regex"):
            invalid.append(f"regexp_matches({column}::VARCHAR, {_literal(body['invalid_format']['regex'])})")
        breaks = [f"NOT ({' AND '.join(valid)})"] if valid else []
        breaks += invalid
        if breaks:
            condition = f"{column} IS NOT NULL AND ({' OR '.join(breaks)})"
    elif check.type == "failed_rows" and body.get("expression"):
        condition = str(body["expression"])
    if condition and body.get("filter"):
        condition = f"({body['filter']}) AND ({condition})"
    return condition


def _failing_rows(conn, contract: Contract, check: ContractCheck, business_date: dt.date
                  ) -> tuple[list[dict], dict, str | None]:
    columns = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [BOOKS_SCHEMA, contract.table],
    ).fetchall()]
    where = f"({contract.resolved_filter(business_date)})"
    if check.type == "duplicate":
        keys = [c for c in (check.body.get("columns") or [check.column]) if c]
        partition = ", ".join(_quote(k) for k in keys)
        extra_filter = f" AND ({check.body['filter']})" if check.body.get("filter") else ""
        relation = (f"(SELECT *, count(*) OVER (PARTITION BY {partition}) AS _copies "
                    f"FROM {contract.relation} WHERE {where}{extra_filter})")
        condition = "_copies > 1"
        shown = _shown_columns(columns, keys) + ["_copies"]
        order = f"ORDER BY {partition}"
    elif check.type == "failed_rows" and check.body.get("query"):
        query = _VARIABLE.sub(business_date.isoformat(), str(check.body["query"]))
        cursor = conn.execute(f"SELECT * FROM ({query}) LIMIT {MAX_SAMPLE_ROWS}")
        names = [d[0] for d in cursor.description]
        samples = [dict(zip(names, row)) for row in cursor.fetchall()]
        return samples, _affected_from(samples), query
    else:
        condition = failing_condition(check)
        if condition is None:
            return [], {}, None
        relation = contract.relation
        mentioned = [c for c in columns if re.search(rf"\b{re.escape(c)}\b", condition)]
        shown = _shown_columns(columns, mentioned)
        order = "ORDER BY " + ", ".join(_quote(c) for c in shown[:3])
        condition = f"{where} AND ({condition})"
    column_sql = ", ".join(_quote(c) for c in shown)
    rows = conn.execute(
        f"SELECT {column_sql} FROM {relation} WHERE {condition} {order} LIMIT {MAX_SAMPLE_ROWS}"
    ).fetchall()
    samples = [dict(zip(shown, row)) for row in rows]
    affected = {}
    for column in _AFFECTED:
        if column in columns:
            values = conn.execute(
                f"SELECT DISTINCT {_quote(column)} FROM {relation} WHERE {condition} ORDER BY 1 LIMIT 50"
            ).fetchall()
            found = [str(v[0]) for v in values if v[0] is not None]
            if found:
                affected[column] = found
    return samples, affected, f"SELECT * FROM {relation} WHERE {condition}"


def _shown_columns(columns: list[str], wanted: list[str]) -> list[str]:
    return list(dict.fromkeys([c for c in _SAMPLE_KEYS if c in columns] + [c for c in wanted if c in columns]))


def _affected_from(samples: list[dict]) -> dict:
    affected = {}
    for column in _AFFECTED:
        values = sorted({str(s[column]) for s in samples if s.get(column) is not None})
        if values:
            affected[column] = values
    return affected


def _int(value) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _outcome(check: ContractCheck, passed: bool, text: str, business_date: dt.date, *, failing: int = 0,
             total: int = 0, samples=None, affected=None, extra=None) -> CheckOutcome:
    return CheckOutcome(
        check_name=check.check_name,
        passed=passed,
        blocking=check.blocking,
        severity=check.severity,
        rule=check.as_written,
        description=text,
        engine=ENGINE,
        failing_count=int(failing or 0),
        total_count=int(total or 0),
        sample_rows=list(samples or [])[:MAX_SAMPLE_ROWS],
        affected=dict(affected or {}),
        reason=check.reason,
        extra={"business_date": business_date.isoformat(), **(extra or {})},
    )


# --------------------------------------------------------------------------------------------
# Dagster


def _spec(asset_key: dg.AssetKey, check: ContractCheck, partitions_def) -> dg.AssetCheckSpec:
    verdict = "Blocks downstream" if check.blocking else "Warns only"
    why = f" {verdict}: {check.reason}." if check.reason else f" {verdict}."
    return check_spec(
        check.check_name,
        asset=asset_key,
        blocking=check.blocking,
        partitions_def=partitions_def,
        description=f"{check.title} (Soda contract asset_checks/soda/{check.table}.yaml).{why}",
        metadata={"rule": check.as_written, "severity": check.severity, "engine": ENGINE,
                  "rule_source": f"asset_checks/soda/{check.table}.yaml"},
    )


def _build_table_checks(table: str) -> dg.AssetChecksDefinition:
    asset_key = dg.AssetKey([table])
    checks = contract_checks(table)
    partitions_def = trading_day_partitions()
    specs = [_spec(asset_key, check, partitions_def) for check in checks]

    @dg.multi_asset_check(
        name=f"{table}_soda_contract",
        specs=specs,
        can_subset=True,
        description=f"The Soda Core contract asset_checks/soda/{table}.yaml on books.{table}, for the partition's trading date.",
    )
    def _soda_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        business_date = dt.date.fromisoformat(context.partition_key)
        selected = {key.name for key in context.selected_asset_check_keys}
        with warehouse.read() as conn:
            outcomes = verify_contracts(conn, business_date, [table])[table]
        for outcome in outcomes:
            if outcome.check_name not in selected:
                continue
            if not outcome.passed:
                log = context.log.error if outcome.blocking else context.log.warning
                log(f"{table}.{outcome.check_name}: {outcome.description}")
            yield outcome_to_result(asset_key, outcome)

    return _soda_checks


def build_soda_checks() -> list[dg.AssetChecksDefinition]:
    """One Dagster multi-asset check per books table, one check per contract entry; no Soda import."""
    return [_build_table_checks(table) for table in SODA_TABLES]
