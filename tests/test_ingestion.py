"""Landing files are read exactly per the spec; every problem names the file, column and lines."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from cei_assets.ingestion import load_dataset
from cei_assets.landing import EXECUTIONS, ORDERS, QUOTES, SECURITIES

DAY = dt.date(2026, 10, 1)
EXECUTIONS_HEADER = "exec_id,order_id,ts,account,symbol,side,quantity,price,currency,fee,broker,venue"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.fixture
def conn():
    connection = duckdb.connect()
    yield connection
    connection.close()


def test_every_column_is_loaded_with_its_type_and_unknown_columns_are_ignored(tmp_path, conn):
    write(tmp_path / DAY.isoformat() / "executions.csv",
          EXECUTIONS_HEADER + ",desk_note\n"
          "E1,O1,2026-10-01T14:23:45.123Z,ACC1,AAPL,BUY,10,187.25,USD,0.19,GS,XNAS,hello\n")
    result = load_dataset(conn, EXECUTIONS, tmp_path, DAY)
    assert result.ok and result.rows == 1
    row = conn.execute("SELECT ts, quantity, price, fee, business_date FROM raw.executions").fetchone()
    assert row[0] == dt.datetime(2026, 10, 1, 14, 23, 45, 123000)
    assert str(row[1]) == "10.000000" and str(row[2]) == "187.250000" and str(row[3]) == "0.190000"
    assert row[4] == DAY
    columns = [c[0] for c in conn.execute("DESCRIBE raw.executions").fetchall()]
    assert "desk_note" not in columns


def test_an_unparsable_value_names_the_file_the_column_and_the_line(tmp_path, conn):
    path = write(tmp_path / DAY.isoformat() / "executions.csv",
                 EXECUTIONS_HEADER + "\n"
                 "E1,O1,2026-10-01T14:23:45.123Z,ACC1,AAPL,BUY,10,187.25,USD,0.19,GS,XNAS\n"
                 "E2,O1,2026-10-01T14:23:46.000Z,ACC1,AAPL,BUY,10,12.3.4,USD,0.19,GS,XNAS\n")
    result = load_dataset(conn, EXECUTIONS, tmp_path, DAY)
    assert not result.ok
    (problem,) = result.problems
    assert problem.kind == "unparsable_values"
    assert problem.file == str(path) and problem.column == "price" and problem.lines == [3]
    assert str(path) in result.summary() and "price" in result.summary() and "3" in result.summary()


def test_a_missing_required_column_is_reported_by_name(tmp_path, conn):
    write(tmp_path / DAY.isoformat() / "executions.csv",
          "exec_id,order_id,ts,account,symbol,side,quantity,price,currency,broker,venue\n")
    result = load_dataset(conn, EXECUTIONS, tmp_path, DAY)
    (problem,) = result.problems
    assert problem.kind == "missing_columns" and problem.column == "fee"
    assert "fee" in result.summary()


def test_a_missing_file_is_reported_with_its_path(tmp_path, conn):
    result = load_dataset(conn, ORDERS, tmp_path, DAY)
    (problem,) = result.problems
    assert problem.kind == "missing_file"
    assert str(tmp_path / DAY.isoformat() / "orders.csv") in problem.message


def test_a_file_that_is_not_utf8_is_reported_not_crashed_on(tmp_path, conn):
    write(tmp_path / "reference" / "securities.csv",
          b"symbol,currency,exchange,sector,lot_size\nAAPL,USD,XNAS,Tech\xff\xfe,1\n")
    result = load_dataset(conn, SECURITIES, tmp_path)
    assert not result.ok
    assert result.problems[0].kind == "unreadable_file"
    assert "UTF-8" in result.summary()


def test_an_empty_limit_price_is_null_for_market_orders(tmp_path, conn):
    write(tmp_path / DAY.isoformat() / "orders.csv",
          "order_id,ts,account,symbol,side,quantity,order_type,limit_price\n"
          "O1,2026-10-01T14:00:00.000Z,ACC1,AAPL,BUY,10,MARKET,\n"
          "O2,2026-10-01T14:00:00.000Z,ACC1,AAPL,SELL,5,LIMIT,190.5\n")
    assert load_dataset(conn, ORDERS, tmp_path, DAY).ok
    assert conn.execute("SELECT limit_price FROM raw.orders ORDER BY order_id").fetchall() == [
        (None,), (pytest.approx(190.5),)]


def test_quotes_of_every_vendor_are_loaded_with_the_vendor_kept(tmp_path, conn):
    header = "ts,symbol,bid,ask,bid_size,ask_size\n"
    write(tmp_path / DAY.isoformat() / "quotes_primary.csv", header + "2026-10-01T14:00:00.000Z,AAPL,1,1.1,100,200\n")
    write(tmp_path / DAY.isoformat() / "quotes_secondary.csv",
          header + "2026-10-01T14:00:00.000Z,AAPL,1,1.1,100,200\n2026-10-01T14:00:01.000Z,AAPL,1,1.1,100,200\n")
    result = load_dataset(conn, QUOTES, tmp_path, DAY)
    assert result.ok and result.rows_by_vendor == {"primary": 1, "secondary": 2}
    assert conn.execute("SELECT vendor, count(*) FROM raw.quotes GROUP BY 1 ORDER BY 1").fetchall() == [
        ("primary", 1), ("secondary", 2)]


def test_reloading_a_date_replaces_its_rows_and_keeps_other_dates(tmp_path, conn):
    other = DAY + dt.timedelta(days=1)
    for day in (DAY, other):
        write(tmp_path / day.isoformat() / "executions.csv",
              EXECUTIONS_HEADER + f"\nE-{day},O1,{day}T14:23:45.123Z,ACC1,AAPL,BUY,10,187.25,USD,0.19,GS,XNAS\n")
        load_dataset(conn, EXECUTIONS, tmp_path, day)
    load_dataset(conn, EXECUTIONS, tmp_path, DAY)
    assert conn.execute("SELECT business_date, count(*) FROM raw.executions GROUP BY 1 ORDER BY 1").fetchall() == [
        (DAY, 1), (other, 1)]


def test_every_row_keeps_its_own_line_in_the_file_also_after_an_unparsable_line(tmp_path, conn):
    header = "ts,symbol,bid,ask,bid_size,ask_size\n"
    path = write(tmp_path / DAY.isoformat() / "quotes_primary.csv", header
                 + "2026-10-01T14:00:00.000Z,AAA,1,1.1,100,200\n"
                 + "2026-10-01T14:00:01.000Z,BBB,one,1.1,100,200\n"
                 + "2026-10-01T14:00:02.000Z,CCC,1,1.1,100,200\n"
                 + "2026-10-01T14:00:03+02:00,DDD,1,1.1,100,200\n")
    result = load_dataset(conn, QUOTES, tmp_path, DAY)
    assert [(p.column, p.lines) for p in result.problems] == [("bid", [3])]
    assert conn.execute("SELECT symbol, _source_file, _source_line, ts FROM raw.quotes ORDER BY _source_line").fetchall() == [
        ("AAA", str(path), 2, dt.datetime(2026, 10, 1, 14, 0, 0)),
        ("CCC", str(path), 4, dt.datetime(2026, 10, 1, 14, 0, 2)),
        ("DDD", str(path), 5, dt.datetime(2026, 10, 1, 12, 0, 3)),  # an offset is converted to UTC
    ]
