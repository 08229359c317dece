"""The warehouse on PostgreSQL: the same data, the same checks, the same books as on DuckDB.

Each test module gets a throwaway database on the local server (tests/throwaway_postgres.py),
dropped afterwards. The fast tests load generated landing files into both engines with the real
ingestion and run the real rule files on each; the slow test runs the daily graph with `cei run`
on each engine (CEI_WAREHOUSE_URL set for PostgreSQL) and compares the books to the cent.
"""

import concurrent.futures
import datetime as dt
import filecmp
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from cei_cli import cei
from throwaway_postgres import throwaway_database

from asset_checks.dagster_checks import target_of
from asset_checks.engine import run_rules, table_context
from asset_checks.rules import load_rules
from cei_assets.ingestion import load_dataset
from cei_assets.landing import ALL_DATASETS
from cei_assets.sample_data import generate_landing
from cei_assets.warehouse import WarehouseLockTimeout, WarehouseResource
from cei_assets.warehouse_postgres import WRITERS_LOCK, PostgresConnection, WarehouseURLError, parse_url

START = dt.date(2026, 10, 1)
SMALL = {"seed": 5, "symbols": 12, "quotes_per_symbol": 120, "orders_per_day": 15}
# Faults planted together on the last date, each in files of its own: a warning on quotes, two
# blocking market-data faults, a value that does not parse and a missing column.
PLANTED = ("null_bid", "eod_mark_decimal_shift", "fx_cross_inconsistent", "malformed_value", "missing_column")


def _url(database: dict) -> str:
    return (f"postgresql://{database['CEI_PG_USER']}@{database['CEI_PG_HOST']}:{database['CEI_PG_PORT']}/"
            f"{database['CEI_PG_DATABASE']}")


@pytest.fixture(scope="module")
def pg_url():
    with throwaway_database("cei_warehouse") as database:
        yield _url(database)


@pytest.fixture
def pg(pg_url, tmp_path) -> WarehouseResource:
    return WarehouseResource(path=str(tmp_path / "unused.duckdb"), url=pg_url, lock_timeout_seconds=1)


# --------------------------------------------------------------------------- DuckDB SQL on PostgreSQL


def test_duckdb_sql_runs_on_postgresql_with_duckdbs_parameter_styles(pg):
    duck = duckdb.connect()
    queries = [
        ("SELECT ? + 1 AS n, 'x%y' LIKE 'x%' AS literal_percent", [41]),
        ("SELECT $day - INTERVAL 3 DAY AS earlier, $day::VARCHAR AS text", {"day": dt.date(2026, 10, 5)}),
        ("SELECT $1 * 2, $2 || '!'", [Decimal("1.25"), "done"]),
        ("SELECT ? AS quoted, ? IS NULL AS missing, ? AS listed", ["it's 100%", None, ["a", "b'c"]]),
        ("SELECT count_if(x > 1), sum(x), list(x ORDER BY x DESC)[1:2] FROM (SELECT unnest([1, 2, 3]) AS x)", None),
        ("SELECT median(x), mad(x), round(avg(x), 2) FROM (SELECT unnest([1.0, 2.0, 4.0, 10.0]) AS x)", None),
    ]
    with pg.write() as conn:
        for sql, params in queries:
            assert conn.execute(sql, params).fetchall() == duck.execute(sql, params).fetchall(), sql


def test_a_failing_statement_raises_duckdbs_error_type_with_postgresqls_reason(pg):
    with pg.read() as conn, pytest.raises(duckdb.Error, match="raw.no_such_table"):
        conn.execute("SELECT * FROM raw.no_such_table")


def test_readers_keep_temporary_tables_as_on_duckdb(pg):
    """The checks share intermediate results in temporary tables of their read connection."""
    with pg.read() as conn:
        conn.execute("CREATE TEMP TABLE cei_shared_probe AS SELECT 1 AS x")
        assert conn.execute("SELECT x FROM temp.cei_shared_probe").fetchall() == [(1,)]
    with pg.read() as conn, pytest.raises(duckdb.Error):
        conn.execute("SELECT x FROM temp.cei_shared_probe")  # gone with its session


def test_structs_come_back_as_the_same_typed_dicts(pg):
    sql = ("SELECT min_by({'day': d, 'qty': q, 'px': p, 'who': w}, (d, w), 2) FROM (SELECT * FROM (VALUES "
           "(DATE '2026-10-02', CAST(1.5 AS DECIMAL(24,6)), CAST(0.1 AS DOUBLE), 'b'), "
           "(DATE '2026-10-01', CAST(2 AS DECIMAL(24,6)), CAST(0.25 AS DOUBLE), 'a'), "
           "(DATE '2026-10-03', CAST(3 AS DECIMAL(24,6)), CAST(1 AS DOUBLE), 'c')) AS v(d, q, p, w))")
    with pg.read() as conn:
        assert conn.execute(sql).fetchall() == duckdb.connect().execute(sql).fetchall()


def test_a_url_that_is_not_postgresql_is_refused_with_what_to_set():
    with pytest.raises(WarehouseURLError, match="leave it unset for the DuckDB file"):
        parse_url("mysql://cei@db/warehouse")
    with pytest.raises(WarehouseURLError, match="name the server and the database"):
        parse_url("postgresql://cei@db")
    target = parse_url("postgresql://cei:s3cret@db.internal:6543/books?options=-c%20statement_timeout%3D0")
    assert (target.host, target.port, target.user, target.dbname) == ("db.internal", 6543, "cei", "books")
    assert "s3cret" not in target.shown and "s3cret" == target.password


def test_the_warehouse_url_is_parsed_once_and_the_environments_password_still_counts(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    warehouse = WarehouseResource(path="unused", url="postgresql://cei@db.internal/books")
    assert warehouse.postgres is warehouse.postgres  # asked at every connection, parsed once
    assert WarehouseResource(path="other", url=warehouse.url).postgres is warehouse.postgres
    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    assert warehouse.postgres.password == "from-the-environment"


def test_a_warehouse_that_refuses_the_connection_is_named_with_what_to_set(pg_url):
    missing = WarehouseResource(path="unused", url=pg_url.rsplit("/", 1)[0] + "/cei_no_such_database",
                                lock_timeout_seconds=1)
    where = f"cannot connect to the PostgreSQL warehouse {missing.shown}: .*cei_no_such_database.*CEI_WAREHOUSE_URL"
    with pytest.raises(duckdb.Error, match=where):  # a failed check with the reason, as any duckdb.Error
        with missing.read():
            pass
    with pytest.raises(duckdb.Error, match=where):  # the writers' lock has a connection of its own
        with missing.lock():
            pass


def test_cei_refuses_to_start_on_a_warehouse_url_it_cannot_use(tmp_path):
    run = cei("explain-pnl", "--date", START.isoformat(), home=tmp_path / "home",
              extra_env={"CEI_WAREHOUSE_URL": "mysql://cei@db/warehouse"})
    assert run.returncode == 2
    assert "CEI_WAREHOUSE_URL must be a PostgreSQL URL" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_duckdbs_format_prints_the_same_sentences_on_postgresql(pg):
    """The reconciliation's sentences (dbt macro cei_format) read the same on both engines."""
    template = "'{}: {:.15g} at {:.15g}, cash {:,.2f} ({:,.6f}), {} fills, ratio {}'"
    rows = [
        "'ACC-1', CAST(1500 AS DECIMAL(24,6)), CAST(0.1 AS DOUBLE) + CAST(0.2 AS DOUBLE), "
        "CAST(-1234567.891 AS DECIMAL(24,6)), CAST(2.5 AS DOUBLE), CAST(3 AS BIGINT), CAST(12.5 AS DECIMAL(24,6))",
        "'ACC-2', CAST(0.00001234 AS DOUBLE), CAST(123456.789012345678 AS DOUBLE), CAST(0.004 AS DECIMAL(24,6)), "
        "CAST(-1e-7 AS DOUBLE), CAST(0 AS BIGINT), CAST(7.25 AS DOUBLE)",
    ]
    duck = duckdb.connect()
    with pg.write() as conn:
        for args in rows:
            expected = duck.execute(f"SELECT format({template}, {args})").fetchone()[0]
            got = conn.raw.cursor()
            got.execute(f"SELECT cei_compat.format({template}, json_build_array({_postgres_casts(args)}))")
            assert got.fetchone()[0] == expected
        null = conn.raw.cursor()
        null.execute("SELECT cei_compat.format('{} and {}', json_build_array('a', NULL))")
        assert null.fetchone()[0] is None  # as DuckDB: a missing value leaves no half sentence


def _postgres_casts(args: str) -> str:
    return args.replace("AS DOUBLE)", "AS DOUBLE PRECISION)")


# --------------------------------------------------------------------------- the writers' lock


def _in_another_process(url: str, code: str) -> subprocess.CompletedProcess:
    program = (
        "from cei_assets.warehouse import WarehouseResource, WarehouseLockTimeout\n"
        f"w = WarehouseResource(path='unused', url={url!r}, lock_timeout_seconds=0.5)\n" + code
    )
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)


def test_writers_exclude_each_other_across_processes_and_readers_never_wait(pg, pg_url):
    with pg.write() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.lock_probe (x INTEGER)")
    with pg.lock(exclusive=True):
        with pg.write():  # re-entrant within the process holding it (dbt inside the books step)
            pass
        other = _in_another_process(pg_url, (
            "try:\n"
            "    with w.write(): print('wrote')\n"
            "except WarehouseLockTimeout as e: print('waited:', e)\n"
            "with w.read() as c: print('read', c.execute('SELECT count(*) FROM public.lock_probe').fetchone()[0])\n"
        ))
    assert "waited: waited 0s for the exclusive lock" in other.stdout, other.stderr
    assert "read 0" in other.stdout
    after = _in_another_process(pg_url, "with w.write(): print('wrote')\n")
    assert "wrote" in after.stdout, after.stderr


def test_the_lock_wait_is_bounded_and_says_who_holds_the_warehouse(pg):
    held = PostgresConnection(pg.postgres)
    try:
        held.raw.cursor().execute("SELECT pg_advisory_lock(%s, %s)", WRITERS_LOCK)  # as another writer would
        with pytest.raises(WarehouseLockTimeout, match="another CEI process is writing"):
            with pg.write():
                pass
    finally:
        held.close()


# --------------------------------------------------------------------------- the same checks


@pytest.fixture(scope="module")
def planted_landing(tmp_path_factory):
    """Three generated dates; the last carries the PLANTED faults, copied in from a generated
    landing per fault (a fault edits only its own dataset's files of that date)."""
    root = tmp_path_factory.mktemp("planted")
    clean, landing = root / "clean", root / "landing"
    summary = generate_landing(clean, START, 3, **SMALL)
    shutil.copytree(clean, landing)
    day = dt.date.fromisoformat(str(summary.trading_dates[-1])).isoformat()
    for name in PLANTED:
        faulted = root / name
        generate_landing(faulted, START, 3, fault=name, **SMALL)
        for file in {p.name for p in (faulted / day).iterdir()} | {p.name for p in (clean / day).iterdir()}:
            theirs, original, mine = faulted / day / file, clean / day / file, landing / day / file
            if not theirs.exists():
                mine.unlink()
            elif not original.exists() or not filecmp.cmp(original, theirs, shallow=False):
                shutil.copyfile(theirs, mine)
    return landing, [dt.date.fromisoformat(str(d)) for d in summary.trading_dates]


def _load(conn, landing: Path, dates: list[dt.date]) -> dict:
    problems = {}
    for dataset in ALL_DATASETS:
        for day in dates if dataset.daily else [None]:
            result = load_dataset(conn, dataset, landing, day)
            problems[(dataset.name, day)] = (result.rows, [p.as_metadata() for p in result.problems])
    return problems


def _outcome_view(outcome) -> dict:
    return {
        "passed": outcome.passed, "failing": outcome.failing_count, "total": outcome.total_count,
        "description": outcome.description, "samples": outcome.sample_rows, "affected": outcome.affected,
        "threshold": outcome.threshold,
    }


def test_the_same_rules_on_the_same_data_give_the_same_outcomes_on_both_engines(planted_landing, pg):
    landing, dates = planted_landing
    day = dates[-1]
    duck = duckdb.connect()
    duck_loads = _load(duck, landing, dates)
    with pg.write() as conn:
        pg_loads = _load(conn, landing, dates)
    # The landing files' problems are DuckDB's on both (it parses them), reaching raw the same.
    assert pg_loads == duck_loads
    assert any(problems for _, problems in pg_loads.values())

    compared, failing_on_postgres = 0, set()
    with pg.read() as conn:
        for table, rules in load_rules().items():
            _, relation, keys, _ = target_of(table)
            on_duckdb = run_rules(duck, table_context(duck, table, relation, day, keys), rules)
            on_postgres = run_rules(conn, table_context(conn, table, relation, day, keys), rules)
            for a, b in zip(on_duckdb, on_postgres, strict=True):
                assert _outcome_view(b) == _outcome_view(a), f"{table}.{a.check_name}"
                compared += 1
                if not b.passed:
                    failing_on_postgres.add((table, b.check_name, b.blocking))
    assert compared == sum(len(r) for r in load_rules().values())
    # The planted faults are caught on PostgreSQL by the rules that catch them on DuckDB.
    assert any(t == "quotes" and not blocking for t, _, blocking in failing_on_postgres), failing_on_postgres
    assert any(t == "eod_prices" and blocking for t, _, blocking in failing_on_postgres)
    assert any(t == "fx_rates" and blocking for t, _, blocking in failing_on_postgres)


# --------------------------------------------------------------------------- the daily graph


def _books(conn) -> dict:
    """Positions, cash and P&L of every date; money to the cent, quantities exact."""
    def cents(value):
        return None if value is None else round(Decimal(str(value)), 2)

    return {
        "positions": conn.execute(
            "SELECT business_date, account, symbol, quantity, avg_cost FROM books.positions ORDER BY 1, 2, 3").fetchall(),
        "cash": conn.execute(
            "SELECT business_date, account, currency, balance FROM books.cash_balances ORDER BY 1, 2, 3").fetchall(),
        "pnl": [(d, a, s, cents(r), cents(u), cents(t)) for d, a, s, r, u, t in conn.execute(
            "SELECT business_date, account, symbol, realized_pnl_base, unrealized_pnl_base, total_pnl_base "
            "FROM books.daily_pnl ORDER BY 1, 2, 3").fetchall()],
        "breaks": conn.execute(
            "SELECT business_date, rule, category, blocking, account, symbol, reference, description "
            "FROM reconciliation.recon_breaks ORDER BY 1, 2, 5, 6, 7").fetchall(),
    }


def _status(home: Path, day: dt.date) -> dict:
    return json.loads(cei("status", "--date", day.isoformat(), "--json", home=home).stdout)


def _checks(status: dict) -> dict:
    return {(c["asset"], c["name"]): (c["passed"], c["blocking"]) for c in status["checks"]}


def _run_in_order(dates, home: Path, landing: Path, env: dict | None) -> list:
    return [cei("run", "--date", day.isoformat(), home=home, landing=landing, extra_env=env) for day in dates]


@pytest.mark.slow
def test_the_daily_graph_gives_the_same_books_and_checks_on_postgresql_and_a_blocking_fault_halts_the_pnl(tmp_path):
    landing = tmp_path / "landing"
    summary = generate_landing(landing, START, 2, seed=11, symbols=8, quotes_per_symbol=120, orders_per_day=12)
    dates = [dt.date.fromisoformat(str(d)) for d in summary.trading_dates]
    faulty = tmp_path / "faulty"
    generate_landing(faulty, START, 1, seed=11, symbols=8, quotes_per_symbol=120, orders_per_day=12,
                     fault="eod_mark_decimal_shift", fault_date=START)
    duck_home, pg_home, fault_home = tmp_path / "duckdb", tmp_path / "postgres", tmp_path / "fault"

    with throwaway_database("cei_daily") as clean_db, throwaway_database("cei_fault") as fault_db:
        on_postgres, fault_env = {"CEI_WAREHOUSE_URL": _url(clean_db)}, {"CEI_WAREHOUSE_URL": _url(fault_db)}
        # Three independent deployments at once: the dates of each run in order.
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            on_duckdb_runs = pool.submit(_run_in_order, dates, duck_home, landing, None)
            on_postgres_runs = pool.submit(_run_in_order, dates, pg_home, landing, on_postgres)
            fault_runs = pool.submit(_run_in_order, [START], fault_home, faulty, fault_env)
        for home, runs in ((duck_home, on_duckdb_runs.result()), (pg_home, on_postgres_runs.result())):
            for day, run in zip(dates, runs):
                assert run.returncode == 0, f"{home.name} {day}:\n{run.stdout}\n{run.stderr}"

        # The books: every date's positions and cash exactly, P&L to the cent, the same breaks.
        with duckdb.connect(str(duck_home / "warehouse.duckdb"), read_only=True) as conn:
            duck_books = _books(conn)
        with WarehouseResource(path="unused", url=on_postgres["CEI_WAREHOUSE_URL"]).read() as conn:
            pg_books = _books(conn)
        assert pg_books == duck_books
        assert {d for d, *_ in pg_books["pnl"]} == set(dates) and pg_books["positions"]
        assert not (pg_home / "warehouse.duckdb").exists()  # nothing went to a DuckDB file

        wanted = [(home, day) for day in dates for home in (duck_home, pg_home)] + [(fault_home, START)]
        with concurrent.futures.ThreadPoolExecutor(len(wanted)) as pool:
            statuses = dict(zip(wanted, pool.map(lambda w: _status(*w), wanted)))

        # Every check of the daily graph (SQL rules, pandera, Soda, dbt tests) judged the same.
        for day in dates:
            assert _checks(statuses[pg_home, day]) == _checks(statuses[duck_home, day]), day

        # A blocking fault fails its check and halts the P&L on PostgreSQL as on DuckDB.
        run = fault_runs.result()[0]
        assert run.returncode == 1, run.stdout
        status = statuses[fault_home, START]
        assert any(asset == "landing/eod_prices" and passed is False and blocking
                   for (asset, _), (passed, blocking) in _checks(status).items()), status
        assert not next(a for a in status["assets"] if a["key"] == "daily_pnl")["materialized"]
        with WarehouseResource(path="unused", url=fault_env["CEI_WAREHOUSE_URL"]).read() as conn:
            exists = conn.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'books' AND table_name = 'daily_pnl'").fetchone()[0]
            rows = conn.execute("SELECT count(*) FROM books.daily_pnl").fetchone()[0] if exists else 0
        assert rows == 0
