"""pandera at ingest: one DataFrameModel per small landing dataset, in the one result shape.

Each model states what a clean file of the landing format (``shared/spec/landing-format.md``)
holds once loaded into ``raw.<dataset>``: the required columns and their types, which values
may be empty, and the cheap row rules (sides are BUY or SELL, quantities positive, fees not
negative, currencies three-letter codes, a LIMIT order has a limit price and a MARKET order
none, ...). Quotes are not here: ten million rows a day stay with the SQL rules.

``validate_partition`` reads one trading date of a dataset (all of it for reference data) into
pandas and validates it lazily, so every broken rule is found in one pass. pandera's failure
cases become one ``CheckOutcome`` per model: how many rows fail, up to 20 of them with their key
columns and ``_source_line``, the accounts and symbols they concern, and one sentence naming
the file, the columns and the lines to fix.

``build_pandera_checks`` turns each model into one Dagster asset check (``pandera_schema``) on
the landing asset ``["landing", <dataset>]``, per trading date for daily files. It blocks for
data that feeds the books and only warns for the brokers' files, which are reconciled against
the books rather than booked.
"""

import dataclasses
import datetime as dt
import math
import re
from typing import Any

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from asset_checks.dagster_checks import outcome_to_result
from asset_checks.outcome import MAX_SAMPLE_ROWS, CheckOutcome, list_for_sentence
from cei_assets.check_specs import check_spec
from cei_assets.landing import DATASETS_BY_NAME, LandingDataset
from cei_assets.resources import WarehouseResource
from cei_assets.trading_calendar import trading_day_partitions

PANDERA_CHECK = "pandera_schema"
ENGINE = "pandera"
CURRENCY_CODE = r"^[A-Z]{3}$"
FX_PAIR = r"^[A-Z]{6}$"
MIC = r"^[A-Z0-9]{4}$"
SIDES = ["BUY", "SELL"]


# --------------------------------------------------------------------------------------------
# The models: one per dataset, read as the spec's "what a clean file holds".


class LandingModel(pa.DataFrameModel):
    """Columns of the spec; the raw table's own columns (business_date, _source_file,
    _source_line, _loaded_at) and any column a feed adds pass through unchecked."""

    class Config:
        strict = False
        # DuckDB hands decimals to pandas as float64, whole numbers as int64 or Int64 and an
        # all-empty text column as object: coercion evens that out, and a value that will not
        # convert is a failure case of its own.
        coerce = True


class SecuritiesModel(LandingModel):
    symbol: Series[str] = pa.Field(unique=True)
    currency: Series[str] = pa.Field(str_matches=CURRENCY_CODE)
    exchange: Series[str] = pa.Field(str_matches=MIC)
    sector: Series[str] = pa.Field(nullable=True)
    lot_size: Series[pd.Int64Dtype] = pa.Field(gt=0)


class AccountsModel(LandingModel):
    account: Series[str] = pa.Field(unique=True)
    strategy: Series[str] = pa.Field(nullable=True)
    base_currency: Series[str] = pa.Field(str_matches=CURRENCY_CODE)
    prime_broker: Series[str]


class EodPricesModel(LandingModel):
    symbol: Series[str] = pa.Field(unique=True)
    close: Series[float] = pa.Field(gt=0)
    currency: Series[str] = pa.Field(str_matches=CURRENCY_CODE)
    source: Series[str] = pa.Field(nullable=True)


class FxRatesModel(LandingModel):
    pair: Series[str] = pa.Field(str_matches=FX_PAIR, unique=True)
    rate: Series[float] = pa.Field(gt=0)


class OrdersModel(LandingModel):
    order_id: Series[str] = pa.Field(unique=True)
    ts: Series[pd.Timestamp]
    account: Series[str]
    symbol: Series[str]
    side: Series[str] = pa.Field(isin=SIDES)
    quantity: Series[float] = pa.Field(gt=0)
    order_type: Series[str] = pa.Field(isin=["MARKET", "LIMIT"])
    limit_price: Series[float] = pa.Field(nullable=True, gt=0)

    @pa.dataframe_check(name="limit_price_matches_order_type")
    def limit_price_matches_order_type(cls, df: pd.DataFrame) -> pd.Series:
        """A LIMIT order has a limit price; a MARKET order has none."""
        limit = df["order_type"] == "LIMIT"
        market = df["order_type"] == "MARKET"
        has_price = df["limit_price"].notna()
        return (limit & has_price) | (market & ~has_price) | ~(limit | market)


class ExecutionsModel(LandingModel):
    exec_id: Series[str] = pa.Field(unique=True)
    order_id: Series[str]
    ts: Series[pd.Timestamp]
    account: Series[str]
    symbol: Series[str]
    side: Series[str] = pa.Field(isin=SIDES)
    quantity: Series[float] = pa.Field(gt=0)
    price: Series[float] = pa.Field(gt=0)
    currency: Series[str] = pa.Field(str_matches=CURRENCY_CODE)
    fee: Series[float] = pa.Field(ge=0)
    broker: Series[str]
    venue: Series[str] = pa.Field(nullable=True)


class BrokerTradesModel(LandingModel):
    broker: Series[str]
    broker_ref: Series[str]
    exec_id: Series[str]
    trade_date: Series[pd.Timestamp]
    settle_date: Series[pd.Timestamp]
    account: Series[str]
    symbol: Series[str]
    side: Series[str] = pa.Field(isin=SIDES)
    quantity: Series[float] = pa.Field(gt=0)
    price: Series[float] = pa.Field(gt=0)
    fee: Series[float] = pa.Field(ge=0)
    received_ts: Series[pd.Timestamp]

    class Config:
        unique = ["broker", "broker_ref"]

    @pa.dataframe_check(name="settles_on_or_after_trade_date")
    def settles_on_or_after_trade_date(cls, df: pd.DataFrame) -> pd.Series:
        """A trade settles on or after its trade date."""
        return ~(df["settle_date"] < df["trade_date"])

    @pa.dataframe_check(name="trade_date_is_the_files_date")
    def trade_date_is_the_files_date(cls, df: pd.DataFrame) -> pd.Series:
        """A confirm in the file of date D is for a trade of date D."""
        if "business_date" not in df:
            return pd.Series(True, index=df.index)
        return ~(df["trade_date"].dt.normalize() != pd.to_datetime(df["business_date"]).dt.normalize())


class BrokerPositionsModel(LandingModel):
    account: Series[str]
    symbol: Series[str]
    quantity: Series[float]
    close_price: Series[float] = pa.Field(gt=0)
    market_value: Series[float]
    currency: Series[str] = pa.Field(str_matches=CURRENCY_CODE)

    class Config:
        unique = ["account", "symbol"]

    @pa.dataframe_check(name="market_value_is_quantity_times_price")
    def market_value_is_quantity_times_price(cls, df: pd.DataFrame) -> pd.Series:
        """market_value = quantity * close_price, to the cent."""
        return ~((df["market_value"] - df["quantity"] * df["close_price"]).abs() > 0.01)


class BrokerCashModel(LandingModel):
    account: Series[str]
    currency: Series[str] = pa.Field(str_matches=CURRENCY_CODE)
    balance: Series[float]

    class Config:
        unique = ["account", "currency"]


class CorporateActionsModel(LandingModel):
    symbol: Series[str]
    ex_date: Series[pd.Timestamp]
    action: Series[str] = pa.Field(isin=["SPLIT", "CASH_DIVIDEND"])
    ratio: Series[float] = pa.Field(nullable=True, gt=0)
    amount: Series[float] = pa.Field(nullable=True, gt=0)
    currency: Series[str] = pa.Field(nullable=True, str_matches=CURRENCY_CODE)

    class Config:
        unique = ["symbol", "action"]

    @pa.dataframe_check(name="terms_match_action")
    def terms_match_action(cls, df: pd.DataFrame) -> pd.Series:
        """A SPLIT has a ratio and no amount; a CASH_DIVIDEND has an amount and its currency, no ratio."""
        split = df["action"] == "SPLIT"
        dividend = df["action"] == "CASH_DIVIDEND"
        split_ok = df["ratio"].notna() & df["amount"].isna()
        dividend_ok = df["amount"].notna() & df["currency"].notna() & df["ratio"].isna()
        return (split & split_ok) | (dividend & dividend_ok) | ~(split | dividend)

    @pa.dataframe_check(name="ex_date_is_the_files_date")
    def ex_date_is_the_files_date(cls, df: pd.DataFrame) -> pd.Series:
        """An action in the file of date D goes ex on D: the books apply it on its ex_date only."""
        if "business_date" not in df:
            return pd.Series(True, index=df.index)
        return ~(df["ex_date"].dt.normalize() != pd.to_datetime(df["business_date"]).dt.normalize())


# Row rules spanning columns: what they say when broken, and the columns to fix.
ROW_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "limit_price_matches_order_type": ("limit_price does not match order_type (LIMIT needs one, MARKET none)",
                                       ("order_type", "limit_price")),
    "settles_on_or_after_trade_date": ("settle_date is before trade_date", ("trade_date", "settle_date")),
    "trade_date_is_the_files_date": ("trade_date is not the file's trading date", ("trade_date",)),
    "market_value_is_quantity_times_price": ("market_value is not quantity * close_price",
                                             ("quantity", "close_price", "market_value")),
    "terms_match_action": ("ratio, amount and currency do not match the action (SPLIT: ratio; "
                           "CASH_DIVIDEND: amount and currency)", ("action", "ratio", "amount", "currency")),
    "ex_date_is_the_files_date": ("ex_date is not the file's trading date", ("ex_date",)),
}


@dataclasses.dataclass(frozen=True)
class IngestModel:
    dataset: str
    model: type[pa.DataFrameModel]
    blocking: bool
    reason: str


_FEEDS_BOOKS = "the books are built from this file; a value that breaks the spec would book or value wrongly"
_BROKER = "the broker's statement is reconciled against the books, not booked; a bad line weakens that reconciliation"

MODELS: dict[str, IngestModel] = {
    m.dataset: m for m in (
        IngestModel("securities", SecuritiesModel, True, _FEEDS_BOOKS),
        IngestModel("accounts", AccountsModel, True, _FEEDS_BOOKS),
        IngestModel("eod_prices", EodPricesModel, True, _FEEDS_BOOKS),
        IngestModel("fx_rates", FxRatesModel, True, _FEEDS_BOOKS),
        IngestModel("orders", OrdersModel, True, _FEEDS_BOOKS),
        IngestModel("executions", ExecutionsModel, True, _FEEDS_BOOKS),
        IngestModel("corporate_actions", CorporateActionsModel, True, _FEEDS_BOOKS),
        IngestModel("broker_trades", BrokerTradesModel, False, _BROKER),
        IngestModel("broker_positions", BrokerPositionsModel, False, _BROKER),
        IngestModel("broker_cash", BrokerCashModel, False, _BROKER),
    )
}

# Columns that say whom a failing row concerns, reported as "affected".
_AFFECTED_COLUMNS = ("account", "symbol", "pair", "currency")


# --------------------------------------------------------------------------------------------
# Validation


def load_partition(conn, dataset: LandingDataset, business_date: dt.date | None) -> pd.DataFrame | None:
    """The dataset's rows for the date (all rows for reference data) in file order; None if no table."""
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = ?", [dataset.name]
    ).fetchone()[0]
    if not exists:
        return None
    if dataset.daily:
        if business_date is None:
            raise ValueError(f"{dataset.name} is daily: validate_partition needs the trading date")
        cursor = conn.execute(
            f"SELECT * FROM raw.{dataset.name} WHERE business_date = ? ORDER BY _source_file, _source_line",
            [business_date],
        )
    else:
        cursor = conn.execute(f"SELECT * FROM raw.{dataset.name} ORDER BY _source_file, _source_line")
    return cursor.df().reset_index(drop=True)


def validate_partition(conn, dataset_name: str, business_date: dt.date | None) -> list[CheckOutcome]:
    """Validate one partition of ``raw.<dataset_name>`` with its pandera model; one outcome per model."""
    if dataset_name not in MODELS:
        hint = " (quotes are checked in SQL: too large for pandas)" if dataset_name == "quotes" else ""
        raise ValueError(f"no pandera model for {dataset_name!r}{hint}; models: {', '.join(MODELS)}")
    spec = MODELS[dataset_name]
    dataset = DATASETS_BY_NAME[dataset_name]
    when = f" for {business_date}" if dataset.daily else ""
    frame = load_partition(conn, dataset, business_date)
    if frame is None:
        return [_outcome(spec, False, f"raw.{dataset_name} does not exist in the warehouse: the file was never loaded")]
    total = len(frame)
    source = _source_of(frame, dataset, business_date)
    try:
        spec.model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return [_failed(spec, dataset, frame, errors.failure_cases, source, when)]
    except Exception as error:  # fail closed, never crash the check
        text = f"pandera could not validate {source}{when} with the {spec.model.__name__}: {error}"
        return [_outcome(spec, False, text, total=total, extra={"source_file": source})]
    if total == 0:
        text = f"raw.{dataset_name} holds no rows{when}: nothing for the {spec.model.__name__} to reject"
    else:
        rows = "The only row" if total == 1 else f"All {total:,} rows"
        verb = "matches" if total == 1 else "match"
        text = f"{rows} of {source} {verb} the {spec.model.__name__} ({_rule_count(spec)})"
    return [_outcome(spec, True, text, total=total, extra={"source_file": source})]


def _source_of(frame: pd.DataFrame, dataset: LandingDataset, business_date) -> str:
    if "_source_file" in frame and frame["_source_file"].notna().any():
        files = sorted(set(frame["_source_file"].dropna().astype(str)))
        return files[0] if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more)"
    where = f"<landing>/{business_date}/{dataset.path}" if dataset.daily else f"<landing>/{dataset.path}"
    return where


def _rule_count(spec: IngestModel) -> str:
    schema = spec.model.to_schema()
    value_rules = sum(len(c.checks) + (not c.nullable) + bool(c.unique) for c in schema.columns.values())
    row_rules = len(schema.checks) + bool(schema.unique)
    return f"{len(schema.columns)} typed columns, {value_rules} value rules, {row_rules} row rules"


@dataclasses.dataclass
class _Failure:
    column: str  # the column to fix, or the row rule's columns joined by "/"
    what: str  # what is wrong, as words
    rows: set  # frame index of failing rows (empty for column-wide failures)
    values: list  # a few offending values
    row_rule: bool = False

    @property
    def label(self) -> str:
        return self.what if self.row_rule else f"{self.column} {self.what}"


def _failed(spec: IngestModel, dataset: LandingDataset, frame: pd.DataFrame, cases: pd.DataFrame, source: str,
            when: str) -> CheckOutcome:
    failures = _group_failures(spec, cases)
    total = len(frame)
    failing_rows = sorted(set().union(*(f.rows for f in failures)) if failures else set())
    whole_file = [f for f in failures if not f.rows]
    failing = total if whole_file else len(failing_rows)

    line_of = frame["_source_line"] if "_source_line" in frame else pd.Series(frame.index + 2, index=frame.index)
    parts = []
    for failure in sorted(failures, key=lambda f: min((int(line_of.loc[i]) for i in f.rows), default=0)):
        if failure.rows:
            lines = sorted({int(line_of.loc[i]) for i in failure.rows})
            shown = ", ".join(str(n) for n in lines[:5]) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")
            values = _values_text(failure.values)
            parts.append(f"{failure.label}{values} ({'line' if len(lines) == 1 else 'lines'} {shown})")
        else:
            parts.append(failure.label)

    samples = _samples(frame, dataset, failures, failing_rows)
    affected = {}
    for column in _AFFECTED_COLUMNS:
        if column in frame and failing_rows:
            values = sorted({str(v) for v in frame.loc[failing_rows, column] if _present(v)})
            if values:
                affected[column] = values[:50]

    rows_text = f"{failing:,} of {total:,} row(s)" if not whole_file else f"all {total:,} row(s)"
    text = f"{source}{when}: {rows_text} break the {spec.model.__name__}: " + "; ".join(parts)
    if affected.get("account"):
        text += f"; accounts: {list_for_sentence(affected['account'])}"
    if affected.get("symbol"):
        text += f"; symbols: {list_for_sentence(affected['symbol'])}"
    extra = {
        "source_file": source,
        "failures": [
            {"column": f.column, "problem": f.what, "rows": len(f.rows),
             "lines": sorted(int(line_of.loc[i]) for i in f.rows)[:MAX_SAMPLE_ROWS],
             "values": [_plain(v) for v in f.values[:5]]}
            for f in failures
        ],
    }
    return _outcome(spec, False, text, failing=failing, total=total, samples=samples, affected=affected, extra=extra)


def _group_failures(spec: IngestModel, cases: pd.DataFrame) -> list[_Failure]:
    """pandera's failure cases, one _Failure per column and rule, rows as frame index labels."""
    groups: dict[tuple[str, str], _Failure] = {}
    model_name = spec.model.__name__
    for case in cases.itertuples(index=False):
        row_rule = False
        check = str(case.check)
        index = case.index
        has_row = index is not None and not (isinstance(index, float) and math.isnan(index))
        if check == "column_in_dataframe":
            key = (str(case.failure_case), "is missing from the table")
        elif check.startswith("dtype(") and not has_row:
            key = (str(case.column), f"has type {case.failure_case}, the model wants {_between(check)}")
        elif case.schema_context == "DataFrameSchema" and check in ROW_RULES:
            what, columns = ROW_RULES[check]
            key = ("/".join(columns), what)
            row_rule = True
        elif check == "multiple_fields_uniqueness":
            unique = spec.model.to_schema().unique or []
            key = ("/".join(unique), "repeats a key that must be unique")
        else:
            key = (str(case.column) if case.column != model_name else "table", _phrase(check))
        failure = groups.setdefault(key, _Failure(key[0], key[1], set(), [], row_rule))
        if has_row:
            failure.rows.add(int(index))
            if key[0] == str(case.column) and len(failure.values) < 5 and _plain(case.failure_case) not in failure.values:
                failure.values.append(_plain(case.failure_case))
    # A value that does not convert is reported once, as the conversion failure: the type and
    # value checks that then run on the unconverted column only repeat it.
    coerced = {k[0] for k in groups if k[1].startswith("cannot be read as")}
    failures = [f for k, f in groups.items() if k[0] not in coerced or k[1].startswith("cannot be read as")]
    # A row rule over a column that is not there says nothing more than the missing column.
    if any(f.what == "is missing from the table" for f in failures):
        failures = [f for f in failures if not (f.row_rule and not f.rows)]
    return failures


def _phrase(check: str) -> str:
    """pandera's check name as words a person can act on."""
    if check == "not_nullable":
        return "is empty"
    if check == "field_uniqueness":
        return "repeats a value that must be unique"
    if check.startswith("coerce_dtype("):
        return f"cannot be read as {_between(check)}"
    if check.startswith("dtype("):
        return f"is not of type {_between(check)}"
    match = re.fullmatch(r"isin\((.*)\)", check)
    if match:
        return f"is not one of {match.group(1).strip('[]').replace(chr(39), '')}"
    match = re.fullmatch(r"str_matches\('(.*)'\)", check)
    if match:
        pattern = match.group(1)
        named = {CURRENCY_CODE: "a three-letter currency code", FX_PAIR: "a six-letter currency pair",
                 MIC: "a four-character exchange code (MIC)"}
        return f"is not {named.get(pattern, 'matching ' + pattern)}"
    for name, words in (("greater_than_or_equal_to", ">="), ("greater_than", ">"),
                        ("less_than_or_equal_to", "<="), ("less_than", "<")):
        match = re.fullmatch(rf"{name}\((.*)\)", check)
        if match:
            return f"is not {words} {match.group(1)}"
    return f"breaks {check}"


def _between(check: str) -> str:
    inside = check[check.find("(") + 1: check.rfind(")")]
    return inside.strip("'")


def _values_text(values: list) -> str:
    shown = [v for v in values if _present(v)]
    if not shown:
        return ""
    return " (" + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in shown[:3]) + ")"


def _samples(frame: pd.DataFrame, dataset: LandingDataset, failures: list[_Failure], rows: list[int]) -> list[dict]:
    wanted = ["business_date"] if "business_date" in frame else []
    wanted += list(dataset.key) + list(_AFFECTED_COLUMNS)
    for failure in failures:
        wanted += failure.column.split("/")
    wanted += ["_source_file", "_source_line"]
    columns = [c for c in dict.fromkeys(wanted) if c in frame]
    dates = {c for c, t in dataset.columns.items() if t == "DATE"} | {"business_date"}
    problems_by_row: dict[int, list[str]] = {}
    for failure in failures:
        for i in failure.rows:
            problems_by_row.setdefault(i, []).append(failure.label)
    samples = []
    for i in rows[:MAX_SAMPLE_ROWS]:
        row = {c: _plain(frame.at[i, c], as_date=c in dates) for c in columns}
        row["problems"] = problems_by_row.get(i, [])
        samples.append(row)
    return samples


def _present(value: Any) -> bool:
    if value is None:
        return False
    try:
        return not pd.isna(value)
    except (TypeError, ValueError):
        return True


def _plain(value: Any, as_date: bool = False) -> Any:
    """Python values for metadata: numpy scalars unwrapped, missing as None, timestamps as ISO text."""
    if not _present(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if as_date else value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, TypeError):
            return str(value)
    return value


def _outcome(spec: IngestModel, passed: bool, text: str, *, failing: int = 0, total: int = 0, samples=None,
             affected=None, extra=None) -> CheckOutcome:
    return CheckOutcome(
        check_name=PANDERA_CHECK,
        passed=passed,
        blocking=spec.blocking,
        severity="ERROR" if spec.blocking else "WARN",
        rule=f"pandera {spec.model.__name__} (asset_checks/pandera_models.py)",
        description=text,
        engine=ENGINE,
        failing_count=int(failing),
        total_count=int(total),
        sample_rows=list(samples or [])[:MAX_SAMPLE_ROWS],
        affected=dict(affected or {}),
        reason=spec.reason,
        extra={"model": spec.model.__name__, **(extra or {})},
    )


# --------------------------------------------------------------------------------------------
# Dagster


def _build_dataset_check(spec: IngestModel) -> dg.AssetChecksDefinition:
    dataset = DATASETS_BY_NAME[spec.dataset]
    asset_key = dg.AssetKey(["landing", spec.dataset])
    partitions_def = trading_day_partitions() if dataset.daily else None
    verdict = "Blocks downstream" if spec.blocking else "Warns only"
    check = check_spec(
        PANDERA_CHECK,
        asset=asset_key,
        blocking=spec.blocking,
        partitions_def=partitions_def,
        description=(
            f"raw.{spec.dataset} matches the pandera {spec.model.__name__}: required columns and types, "
            f"empty values and the row rules of the landing spec. {verdict}: {spec.reason}."
        ),
        metadata={"rule": f"pandera {spec.model.__name__}", "engine": ENGINE,
                  "severity": "ERROR" if spec.blocking else "WARN", "rule_source": "asset_checks/pandera_models.py"},
    )

    @dg.multi_asset_check(
        name=f"{spec.dataset}_pandera",
        specs=[check],
        description=f"The pandera {spec.model.__name__} on raw.{spec.dataset}"
                    + (", one trading date at a time." if dataset.daily else "."),
    )
    def _pandera_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        business_date = dt.date.fromisoformat(context.partition_key) if dataset.daily else None
        with warehouse.read() as conn:
            outcomes = validate_partition(conn, spec.dataset, business_date)
        for outcome in outcomes:
            if not outcome.passed:
                log = context.log.error if outcome.blocking else context.log.warning
                log(f"{spec.dataset}.{outcome.check_name}: {outcome.description}")
            yield outcome_to_result(asset_key, outcome)

    return _pandera_check


def build_pandera_checks() -> list[dg.AssetChecksDefinition]:
    """One Dagster check per model, on the landing asset of its dataset; nothing is read until it runs."""
    return [_build_dataset_check(spec) for spec in MODELS.values()]
