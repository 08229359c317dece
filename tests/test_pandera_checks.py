"""pandera at ingest: the landing files, once in raw.<dataset>, match their DataFrameModels.

Files are written in the landing format and loaded by the platform's own ingestion, so the raw
tables carry the real `_source_file` and `_source_line`. A clean file passes; each broken rule
fails the dataset's one `pandera_schema` check with the failing rows counted, up to 20 of them
shown with their keys and lines, and a sentence naming the file, the columns and the lines.
"""

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from asset_checks.pandera_models import MODELS, PANDERA_CHECK, build_pandera_checks, validate_partition
from cei_assets.ingestion import load_dataset
from cei_assets.landing import DATASETS_BY_NAME
from cei_assets.trading_calendar import trading_day_partitions
from cei_assets.warehouse import WarehouseResource

DAY, NEXT_DAY = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
PROJECT_ROOT = Path(__file__).resolve().parent.parent

CLEAN = {
    "securities": """\
        symbol,currency,exchange,sector,lot_size
        AAPL,USD,XNAS,Information Technology,1
        SAP,EUR,XETR,,1
        7203,JPY,XTKS,Consumer Discretionary,100
        """,
    "accounts": """\
        account,strategy,base_currency,prime_broker
        ACC1,Global Equity,USD,GSCO
        ACC2,Europe Long/Short,EUR,MSCO
        """,
    "eod_prices": """\
        symbol,close,currency,source
        AAPL,236.5624,USD,PRIMARY_CLOSE
        SAP,237.9712,EUR,
        """,
    "fx_rates": """\
        pair,rate
        EURUSD,1.0794775290
        JPYUSD,0.0065705421
        EURGBP,0.8513566121
        """,
    "orders": """\
        order_id,ts,account,symbol,side,quantity,order_type,limit_price
        O1,2026-10-01T13:30:00.000Z,ACC1,AAPL,BUY,100,LIMIT,237.00
        O2,2026-10-01T13:31:00.000Z,ACC1,SAP,SELL,50,MARKET,
        O3,2026-10-01T13:32:00.000Z,ACC2,SAP,BUY,10,MARKET,
        O4,2026-10-01T13:33:00.000Z,ACC2,AAPL,SELL,20,LIMIT,236.00
        """,
    "executions": """\
        exec_id,order_id,ts,account,symbol,side,quantity,price,currency,fee,broker,venue
        E1,O1,2026-10-01T13:30:01.000Z,ACC1,AAPL,BUY,60,236.90,USD,0.60,GSCO,XNAS
        E2,O1,2026-10-01T13:30:02.000Z,ACC1,AAPL,BUY,40,236.95,USD,0.40,GSCO,
        E3,O2,2026-10-01T13:31:01.000Z,ACC1,SAP,SELL,50,237.00,EUR,0,MSCO,XETR
        """,
    "broker_trades": """\
        broker,broker_ref,exec_id,trade_date,settle_date,account,symbol,side,quantity,price,fee,received_ts
        GSCO,G-1,E1,2026-10-01,2026-10-02,ACC1,AAPL,BUY,60,236.90,0.60,2026-10-01T14:00:00.000Z
        GSCO,G-2,E2,2026-10-01,2026-10-02,ACC1,AAPL,BUY,40,236.95,0.40,2026-10-01T14:00:01.000Z
        MSCO,M-1,E3,2026-10-01,2026-10-05,ACC1,SAP,SELL,50,237.00,0,2026-10-01T14:00:02.000Z
        """,
    "broker_positions": """\
        account,symbol,quantity,close_price,market_value,currency
        ACC1,AAPL,7591,236.5624,1795745.1784,USD
        ACC2,SAP,-493,237.9712,-117319.8016,EUR
        """,
    "broker_cash": """\
        account,currency,balance
        ACC1,USD,27107223.0951
        ACC1,EUR,-1174098.2506
        """,
    "corporate_actions": """\
        symbol,ex_date,action,ratio,amount,currency
        SAP,2026-10-01,SPLIT,2,,EUR
        AAPL,2026-10-01,CASH_DIVIDEND,,0.25,USD
        """,
}


def write_file(landing: Path, name: str, text: str, day: dt.date = DAY) -> Path:
    dataset = DATASETS_BY_NAME[name]
    path = dataset.file_for(landing, day if dataset.daily else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def ingest(conn, landing: Path, name: str, text: str, day: dt.date = DAY) -> Path:
    path = write_file(landing, name, text, day)
    dataset = DATASETS_BY_NAME[name]
    result = load_dataset(conn, dataset, landing, day if dataset.daily else None)
    assert result.ok, result.summary()  # pandera judges what parsed; unparsable values are the landing check's
    return path


@pytest.fixture
def conn():
    connection = duckdb.connect()
    yield connection
    connection.close()


def validate(conn, name, day=DAY):
    (outcome,) = validate_partition(conn, name, day if DATASETS_BY_NAME[name].daily else None)
    return outcome


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_a_clean_file_matches_its_model(tmp_path, conn, name):
    path = ingest(conn, tmp_path, name, CLEAN[name])
    outcome = validate(conn, name)
    assert outcome.passed, outcome.description
    assert outcome.engine == "pandera" and outcome.check_name == PANDERA_CHECK
    assert outcome.failing_count == 0 and outcome.total_count == len(CLEAN[name].strip().splitlines()) - 1
    assert str(path) in outcome.description and MODELS[name].model.__name__ in outcome.description


def test_every_small_dataset_has_a_model_and_quotes_stay_in_sql(conn):
    assert set(MODELS) == {"orders", "executions", "broker_trades", "broker_positions", "broker_cash",
                           "corporate_actions", "securities", "accounts", "eod_prices", "fx_rates"}
    with pytest.raises(ValueError, match="quotes are checked in SQL"):
        validate_partition(conn, "quotes", DAY)


def test_broken_orders_fail_with_the_rows_the_lines_and_a_sentence_naming_file_and_columns(tmp_path, conn):
    path = ingest(conn, tmp_path, "orders", """\
        order_id,ts,account,symbol,side,quantity,order_type,limit_price
        O1,2026-10-01T13:30:00.000Z,ACC1,AAPL,BUY,100,LIMIT,237.00
        O2,2026-10-01T13:31:00.000Z,ACC1,SAP,HOLD,50,MARKET,
        O3,2026-10-01T13:32:00.000Z,ACC2,SAP,BUY,0,MARKET,
        O4,2026-10-01T13:33:00.000Z,ACC2,AAPL,SELL,20,LIMIT,
        O5,2026-10-01T13:34:00.000Z,ACC1,AAPL,SELL,20,MARKET,
        """)
    outcome = validate(conn, "orders")
    assert not outcome.passed and outcome.blocking and outcome.severity == "ERROR"
    assert (outcome.failing_count, outcome.total_count) == (3, 5)
    assert outcome.description == (
        f"{path} for 2026-10-01: 3 of 5 row(s) break the OrdersModel: "
        "side is not one of BUY, SELL ('HOLD') (line 3); quantity is not > 0 (0.0) (line 4); "
        "limit_price does not match order_type (LIMIT needs one, MARKET none) (line 5); "
        "accounts: ACC1, ACC2; symbols: AAPL, SAP"
    )
    samples = outcome.sample_rows
    assert [(r["order_id"], r["_source_line"]) for r in samples] == [("O2", 3), ("O3", 4), ("O4", 5)]
    assert all(r["_source_file"] == str(path) and r["business_date"] == "2026-10-01" for r in samples)
    assert samples[0]["side"] == "HOLD" and samples[0]["problems"] == ["side is not one of BUY, SELL"]
    assert samples[2]["order_type"] == "LIMIT" and samples[2]["limit_price"] is None
    assert outcome.affected == {"account": ["ACC1", "ACC2"], "symbol": ["AAPL", "SAP"]}
    metadata = outcome.metadata()
    assert metadata["engine"] == "pandera" and metadata["failing_count"] == 3
    assert {f["column"]: f["lines"] for f in metadata["failures"]} == {
        "side": [3], "quantity": [4], "order_type/limit_price": [5]}


def test_executions_with_a_negative_fee_and_a_lowercase_currency_block(tmp_path, conn):
    path = ingest(conn, tmp_path, "executions", """\
        exec_id,order_id,ts,account,symbol,side,quantity,price,currency,fee,broker,venue
        E1,O1,2026-10-01T13:30:01.000Z,ACC1,AAPL,BUY,60,236.90,USD,-0.60,GSCO,XNAS
        E2,O1,2026-10-01T13:30:02.000Z,ACC1,AAPL,BUY,40,236.95,usd,0.40,GSCO,XNAS
        E3,O2,2026-10-01T13:31:01.000Z,ACC2,SAP,SELL,50,237.00,EUR,0.10,MSCO,XETR
        E3,O2,2026-10-01T13:31:02.000Z,ACC2,SAP,SELL,50,237.00,EUR,0.10,MSCO,XETR
        """)
    outcome = validate(conn, "executions")
    assert not outcome.passed and outcome.blocking
    assert (outcome.failing_count, outcome.total_count) == (4, 4)
    assert str(path) in outcome.description
    assert "fee is not >= 0 (-0.6) (line 2)" in outcome.description
    assert "currency is not a three-letter currency code ('usd') (line 3)" in outcome.description
    assert "exec_id repeats a value that must be unique ('E3') (lines 4, 5)" in outcome.description


def test_a_broker_statement_that_does_not_multiply_out_only_warns(tmp_path, conn):
    ingest(conn, tmp_path, "broker_positions", """\
        account,symbol,quantity,close_price,market_value,currency
        ACC1,AAPL,7591,236.5624,1795745.1784,USD
        ACC2,SAP,-493,237.9712,117319.8016,EUR
        """)
    outcome = validate(conn, "broker_positions")
    assert not outcome.passed
    assert (outcome.blocking, outcome.severity) == (False, "WARN")
    assert outcome.failing_count == 1
    assert "market_value is not quantity * close_price (line 3)" in outcome.description
    assert outcome.sample_rows[0]["market_value"] == 117319.8016
    assert outcome.affected["account"] == ["ACC2"] and outcome.affected["symbol"] == ["SAP"]


def test_corporate_actions_whose_terms_do_not_match_the_action_or_the_date(tmp_path, conn):
    ingest(conn, tmp_path, "corporate_actions", """\
        symbol,ex_date,action,ratio,amount,currency
        SAP,2026-10-01,SPLIT,2,0.5,EUR
        AAPL,2026-10-01,CASH_DIVIDEND,,0.25,
        7203,2026-10-05,SPLIT,3,,JPY
        MSFT,2026-10-01,MERGER,,,
        """)
    outcome = validate(conn, "corporate_actions")
    assert not outcome.passed and outcome.blocking
    assert outcome.failing_count == 4
    lines = {f["problem"]: f["lines"] for f in outcome.extra["failures"]}
    assert lines["ratio, amount and currency do not match the action (SPLIT: ratio; CASH_DIVIDEND: amount and currency)"] \
        == [2, 3]
    assert lines["ex_date is not the file's trading date"] == [4]
    assert lines["is not one of SPLIT, CASH_DIVIDEND"] == [5]
    assert {r["symbol"] for r in outcome.sample_rows} == {"SAP", "AAPL", "7203", "MSFT"}
    assert outcome.sample_rows[2]["ex_date"] == "2026-10-05"


def test_reference_data_is_validated_whole_and_a_repeated_symbol_names_both_lines(tmp_path, conn):
    path = ingest(conn, tmp_path, "securities", """\
        symbol,currency,exchange,sector,lot_size
        AAPL,USD,XNAS,Information Technology,1
        SAP,EUR,XETRA,,1
        AAPL,USD,XNAS,Information Technology,0
        """)
    outcome = validate(conn, "securities")
    assert not outcome.passed and outcome.blocking
    assert (outcome.failing_count, outcome.total_count) == (3, 3)
    assert outcome.description.startswith(f"{path}: 3 of 3 row(s) break the SecuritiesModel: ")
    assert "symbol repeats a value that must be unique ('AAPL') (lines 2, 4)" in outcome.description
    assert "exchange is not a four-character exchange code (MIC) ('XETRA') (line 3)" in outcome.description
    assert "lot_size is not > 0 (0) (line 4)" in outcome.description


def test_fx_rates_with_a_malformed_pair_or_a_non_positive_rate(tmp_path, conn):
    ingest(conn, tmp_path, "fx_rates", "pair,rate\nEURUSD,1.08\nGBPUS,1.27\nJPYUSD,0\n")
    outcome = validate(conn, "fx_rates")
    assert (outcome.passed, outcome.failing_count, outcome.total_count) == (False, 2, 3)
    assert "pair is not a six-letter currency pair ('GBPUS') (line 3)" in outcome.description
    assert "rate is not > 0 (0.0) (line 4)" in outcome.description
    assert outcome.affected == {"pair": ["GBPUS", "JPYUSD"]}


def test_only_the_trading_date_checked_is_judged(tmp_path, conn):
    ingest(conn, tmp_path, "broker_cash", CLEAN["broker_cash"], DAY)
    ingest(conn, tmp_path, "broker_cash", "account,currency,balance\nACC1,USD,1\nACC1,USD,2\n", NEXT_DAY)
    assert validate(conn, "broker_cash", DAY).passed
    later = validate(conn, "broker_cash", NEXT_DAY)
    assert not later.passed and later.failing_count == 2 and later.total_count == 2
    assert "account/currency repeats a key that must be unique (lines 2, 3)" in later.description


def test_a_column_missing_from_the_raw_table_fails_every_row(tmp_path, conn):
    ingest(conn, tmp_path, "eod_prices", CLEAN["eod_prices"])
    conn.execute("ALTER TABLE raw.eod_prices DROP COLUMN currency")
    outcome = validate(conn, "eod_prices")
    assert not outcome.passed
    assert (outcome.failing_count, outcome.total_count) == (2, 2)
    assert "all 2 row(s) break the EodPricesModel: currency is missing from the table" in outcome.description


def test_a_dataset_never_loaded_fails_with_a_clear_message(conn):
    outcome = validate(conn, "accounts")
    assert not outcome.passed and outcome.blocking
    assert outcome.description == "raw.accounts does not exist in the warehouse: the file was never loaded"


def test_at_most_twenty_sample_rows_but_every_failing_row_counted(tmp_path, conn):
    rows = "".join(f"ACC{i},usd,{i}\n" for i in range(30))
    ingest(conn, tmp_path, "broker_cash", "account,currency,balance\n" + rows)
    outcome = validate(conn, "broker_cash")
    assert outcome.failing_count == 30 and len(outcome.sample_rows) == 20
    assert [r["_source_line"] for r in outcome.sample_rows] == list(range(2, 22))
    assert "(lines 2, 3, 4, 5, 6 and 25 more)" in outcome.description
    assert len(outcome.metadata()["sample_failing_rows"]) == 20


def test_one_dagster_check_per_model_on_its_landing_asset():
    definitions = build_pandera_checks()
    assert len(definitions) == len(MODELS)
    partitions = trading_day_partitions()
    specs = {spec.asset_key: spec for definition in definitions for spec in definition.check_specs}
    assert set(specs) == {dg.AssetKey(["landing", name]) for name in MODELS}
    for name, model in MODELS.items():
        spec = specs[dg.AssetKey(["landing", name])]
        assert spec.name == PANDERA_CHECK
        assert spec.blocking is model.blocking
        assert spec.partitions_def == (partitions if DATASETS_BY_NAME[name].daily else None)
    assert {n for n, m in MODELS.items() if m.blocking} == {
        "orders", "executions", "corporate_actions", "eod_prices", "fx_rates", "securities", "accounts"}


def test_the_dagster_check_validates_its_partition_and_blocks_on_failure(tmp_path):
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))
    with warehouse.write() as conn:
        ingest(conn, tmp_path / "landing", "orders", CLEAN["orders"], DAY)
        ingest(conn, tmp_path / "landing", "orders", CLEAN["orders"].replace("BUY", "BOUGHT", 1), NEXT_DAY)

    @dg.asset(key=["landing", "orders"], partitions_def=trading_day_partitions())
    def orders():
        return None

    (check,) = [d for d in build_pandera_checks()
                if any(s.asset_key == dg.AssetKey(["landing", "orders"]) for s in d.check_specs)]

    def evaluate(day):
        result = dg.materialize([orders, check], partition_key=day.isoformat(), resources={"warehouse": warehouse},
                                raise_on_error=False)
        (evaluation,) = result.get_asset_check_evaluations()
        return result.success, evaluation

    succeeded, clean = evaluate(DAY)
    assert succeeded and clean.passed
    succeeded, failed = evaluate(NEXT_DAY)
    # A failed blocking check fails its step: Dagster runs nothing downstream of the file.
    assert not succeeded
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["failing_count"].value == 1
    assert failed.metadata["sample_failing_rows"].value[0]["side"] == "BOUGHT"
    assert "side is not one of BUY, SELL ('BOUGHT') (line 2)" in failed.description


def test_importing_and_building_the_checks_reads_nothing(tmp_path):
    warehouse = tmp_path / "never" / "warehouse.duckdb"
    code = textwrap.dedent("""
        import time
        import dagster, pandas, cei_assets.resources, cei_assets.trading_calendar, asset_checks.dagster_checks
        started = time.perf_counter()
        from asset_checks.pandera_models import build_pandera_checks
        imported = time.perf_counter() - started
        build_pandera_checks()
        print(f"{imported:.3f}")
    """)
    env = {**os.environ, "CEI_WAREHOUSE": str(warehouse), "CEI_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) < 1.0
    assert not warehouse.parent.exists()
