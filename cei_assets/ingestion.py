"""Reading landing files into the warehouse's ``raw`` schema, reporting every problem precisely.

One DuckDB scan per file: columns are read with their spec types, and any value that does
not parse lands in DuckDB's rejects table with its line and column instead of stopping the
read. What went wrong is returned as ``LandingProblem``s that name the file, the column and
the lines, so the asset check that reports them says exactly what an engineer must fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import time
from pathlib import Path

import duckdb

from cei_assets.landing import QUOTES, LandingDataset, read_header, vendor_quote_files

RAW_SCHEMA = "raw"
MAX_PROBLEM_LINES = 20
# One file's parsed rows before they are appended to the raw table (see _read_one_file).
STAGING_TABLE = "temp.cei_landing_rows"

# I/O failures that go away by themselves (a flaky network share, a busy device, an
# interrupted call): raised, so the landing step's retry policy tries again. Every other
# problem with a file is reported at once as the file's problem.
TRANSIENT_ERRNOS = frozenset({
    errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE, errno.ENOLCK,
    errno.ECONNRESET, errno.ECONNABORTED, errno.ENETDOWN, errno.ENETUNREACH, errno.EHOSTUNREACH,
})


def is_transient_io_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS


@dataclasses.dataclass
class LandingProblem:
    file: str
    kind: str  # missing_file | unreadable_file | missing_columns | unparsable_values
    message: str
    column: str | None = None
    lines: list[int] = dataclasses.field(default_factory=list)
    count: int = 0
    samples: list[str] = dataclasses.field(default_factory=list)

    def as_metadata(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, [], 0)}


@dataclasses.dataclass
class IngestResult:
    dataset: str
    files: list[str]
    rows: int
    problems: list[LandingProblem]
    seconds: float
    rows_by_vendor: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"{self.rows:,} rows from {len(self.files)} file(s)"
        first = self.problems[0].message
        more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
        return first + more


def raw_table(dataset: LandingDataset) -> str:
    return f"{RAW_SCHEMA}.{dataset.name}"


def _warehouse_type(sql_type: str) -> str:
    # Timestamps are stored as naive UTC: the spec only carries UTC, and naive values compare
    # the same way in DuckDB and PostgreSQL.
    return "TIMESTAMP" if sql_type == "TIMESTAMPTZ" else sql_type


def ensure_raw_table(conn: duckdb.DuckDBPyConnection, dataset: LandingDataset) -> None:
    columns = [f'"{name}" {_warehouse_type(sql_type)}' for name, sql_type in dataset.columns.items()]
    if dataset is QUOTES:
        columns.append("vendor VARCHAR")
    if dataset.daily:
        columns.append("business_date DATE")
    columns += ["_source_file VARCHAR", "_source_line BIGINT", "_loaded_at TIMESTAMP"]
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {raw_table(dataset)} ({', '.join(columns)})")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read_one_file(
    conn: duckdb.DuckDBPyConnection,
    dataset: LandingDataset,
    path: Path,
    business_date: dt.date | None,
    vendor: str | None,
) -> tuple[int, list[LandingProblem]]:
    """Append one file's rows to the raw table; return the row count and the problems found."""
    shown = str(path)
    try:
        header = read_header(path)
    except UnicodeDecodeError as error:
        return 0, [LandingProblem(shown, "unreadable_file", f"{shown} is not UTF-8 text ({error.reason} at byte {error.start})")]
    except (OSError, ValueError) as error:
        if is_transient_io_error(error):
            raise
        return 0, [LandingProblem(shown, "unreadable_file", f"{shown} cannot be read: {error}")]

    missing = [c for c in dataset.columns if c not in header and c not in dataset.optional_columns]
    if missing:
        return 0, [
            LandingProblem(
                shown, "missing_columns",
                f"{shown} lacks required column(s) {', '.join(missing)} (header: {', '.join(header)})",
                column=", ".join(missing),
            )
        ]
    if len(set(header)) != len(header):
        duplicated = sorted({c for c in header if header.count(c) > 1})
        return 0, [LandingProblem(shown, "unreadable_file", f"{shown} repeats column(s) {', '.join(duplicated)} in its header")]

    # Every column of the file must be named for DuckDB; the ones the spec does not know are
    # read as text and then ignored.
    read_types = {column: dataset.columns.get(column, "VARCHAR") for column in header}
    columns_arg = "{" + ", ".join(f"{_quote(c)}: {_quote(t)}" for c, t in read_types.items()) + "}"
    conn.execute("DROP TABLE IF EXISTS cei_rejects; DROP TABLE IF EXISTS cei_reject_scans")
    source = (
        f"read_csv({_quote(str(path))}, header=true, columns={columns_arg}, auto_detect=false, "
        "delim=',', quote='\"', escape='\"', store_rejects=true, rejects_table='cei_rejects', "
        "rejects_scan='cei_reject_scans', rejects_limit=1000)"
    )
    present = [name for name in dataset.columns if name in header]
    selected = []
    for name in dataset.columns:
        if name not in header:  # an optional column the feed left out
            selected.append(f"NULL::{_warehouse_type(dataset.columns[name])}")
        elif dataset.columns[name] == "TIMESTAMPTZ":
            # The instant as naive UTC. Taken from the epoch (exact, no time-zone rules to apply
            # per value); the cast keeps +/-infinity, which the epoch does not carry.
            selected.append(f'CASE WHEN isfinite("{name}") THEN make_timestamp(epoch_us("{name}")) '
                            f'ELSE "{name}"::TIMESTAMP END')
        else:
            selected.append(f'"{name}"')
    if dataset is QUOTES:
        selected.append(_quote(vendor or ""))
    if dataset.daily:
        selected.append(f"DATE {_quote(business_date.isoformat())}")
    selected += [_quote(shown), "_line", "now()::TIMESTAMP"]
    try:
        # Parsed in parallel into a staging table first: a table filled by one scan keeps the
        # file's order (preserve_insertion_order), so a row's position gives its line. Numbering
        # the rows in the INSERT itself (row_number() OVER ()) runs the whole parse and write on
        # one thread: 5.2 s instead of 3.1 s for 10 million quotes on two idle cores
        # (docs/benchmarks.md).
        staged = ", ".join(f'"{name}"' for name in present) or "NULL AS _nothing"
        conn.execute("SET preserve_insertion_order = true")
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {STAGING_TABLE} AS SELECT {staged} FROM {source}")
        numbered = _numbered_rows(conn)
        # Each row carries its line now, so the raw table need not keep the file's order:
        # unordered, DuckDB compresses and writes the rows to the warehouse file from every
        # thread during the INSERT, instead of all at once on one thread at the checkpoint that
        # makes them durable (10 million quotes on two idle cores: 2.75 s instead of 3.85 s, load
        # and checkpoint, bench/cei_variants.py; the file is 40% smaller). Every rule and sample orders by _source_file/_source_line.
        conn.execute("SET preserve_insertion_order = false")
        inserted = conn.execute(
            f"INSERT INTO {raw_table(dataset)} SELECT {', '.join(selected)} FROM {numbered}"
        ).fetchone()[0]
    except duckdb.Error as error:
        # The statement failed inside load_dataset's transaction, which DuckDB then refuses to
        # continue: the staging table goes with it.
        return 0, [LandingProblem(shown, "unreadable_file", f"{shown} cannot be parsed as CSV: {error}")]
    conn.execute(f"DROP TABLE {STAGING_TABLE}")

    problems = []
    rejects = conn.execute(
        """
        SELECT column_name, error_type, count(*) AS n,
               list(line ORDER BY line)[1:$limit] AS lines,
               list(csv_line ORDER BY line)[1:3] AS samples
        FROM cei_rejects GROUP BY column_name, error_type ORDER BY min(line)
        """,
        {"limit": MAX_PROBLEM_LINES},
    ).fetchall()
    for column, error_type, count, lines, samples in rejects:
        if error_type == "INVALID ENCODING":
            message = f"{shown} is not UTF-8 text: {count} line(s) with invalid bytes, first at line {lines[0]}"
            kind = "unreadable_file"
        else:
            expected = read_types.get(column, "text")
            where = ", ".join(str(n) for n in lines[:5]) + (" ..." if count > 5 else "")
            message = (
                f"{shown}: column {column} has {count} value(s) that are not {_readable_type(expected)} "
                f"(line(s) {where})"
            )
            kind = "unparsable_values"
        problems.append(
            LandingProblem(shown, kind, message, column=column, lines=list(lines), count=count, samples=list(samples))
        )
    return inserted, problems


def _numbered_rows(conn: duckdb.DuckDBPyConnection) -> str:
    """The staged rows with ``_line``, their line in the file (the header is line 1).

    The staging table's k-th row (k from 0, in rowid order) is data line k + 2, except that the
    lines DuckDB rejected (unparsable values, recorded in ``cei_rejects``) hold no row: every row
    after a rejected line moves one line down. Past ``rejects_limit`` recorded rejects in a file
    the lines of later rows are no longer exact; such a file fails its landing check anyway.
    """
    first, last, count = conn.execute(f"SELECT min(rowid), max(rowid), count(*) FROM {STAGING_TABLE}").fetchone()
    if count and last - first + 1 == count:
        # Rowids of a freshly filled table run without gaps (from an offset inside a transaction).
        row = f"rowid - {int(first)}"
    else:  # never seen; numbering in rowid order is exact, only slower
        row = "row_number() OVER (ORDER BY rowid) - 1"
    (rejected,) = conn.execute("SELECT count(DISTINCT line) FROM cei_rejects").fetchone()
    if not rejected:
        return f"(SELECT *, {row} + 2 AS _line FROM {STAGING_TABLE})"
    # The n-th rejected line (counting from 1) at line r moves every row from row r - 1 - n on.
    return f"""(
        SELECT s.*, s._row + 2 + coalesce(k.moved, 0) AS _line
        FROM (SELECT *, {row} AS _row FROM {STAGING_TABLE}) AS s
        ASOF LEFT JOIN (
            SELECT line - 1 - n AS from_row, max(n) AS moved
            FROM (SELECT line, row_number() OVER (ORDER BY line) AS n FROM (SELECT DISTINCT line FROM cei_rejects))
            GROUP BY 1
        ) AS k ON s._row >= k.from_row
    )"""


def _readable_type(sql_type: str) -> str:
    if sql_type.startswith("DECIMAL") or sql_type == "DOUBLE":
        return "numbers"
    if sql_type == "BIGINT":
        return "whole numbers"
    if sql_type == "TIMESTAMPTZ":
        return "ISO 8601 UTC timestamps"
    if sql_type == "DATE":
        return "YYYY-MM-DD dates"
    return sql_type.lower()


def load_dataset(
    conn: duckdb.DuckDBPyConnection,
    dataset: LandingDataset,
    landing_root: Path,
    business_date: dt.date | None = None,
) -> IngestResult:
    """Replace the dataset's rows (its partition, for daily data) with what the landing holds."""
    if getattr(conn, "parses_landing_with_duckdb", False):  # the PostgreSQL warehouse
        from cei_assets.warehouse_postgres import load_dataset_into_postgres

        return load_dataset_into_postgres(conn, dataset, landing_root, business_date)
    started = time.perf_counter()
    ensure_raw_table(conn, dataset)
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("BEGIN TRANSACTION")
    try:
        if dataset.daily:
            conn.execute(f"DELETE FROM {raw_table(dataset)} WHERE business_date = ?", [business_date])
        else:
            conn.execute(f"DELETE FROM {raw_table(dataset)}")

        if dataset is QUOTES:
            day_dir = landing_root / business_date.isoformat()
            files = vendor_quote_files(day_dir)
            if not files:
                missing = str(day_dir / "quotes_<vendor>.csv")
                problems = [LandingProblem(missing, "missing_file", f"no market-data file in {day_dir} (expected quotes_<vendor>.csv)")]
                conn.execute("COMMIT")
                return IngestResult(dataset.name, [], 0, problems, time.perf_counter() - started)
        else:
            path = dataset.file_for(landing_root, business_date)
            if not path.is_file():
                problems = [LandingProblem(str(path), "missing_file", f"missing landing file {path}")]
                conn.execute("COMMIT")
                return IngestResult(dataset.name, [], 0, problems, time.perf_counter() - started)
            files = {None: path}

        rows = 0
        problems: list[LandingProblem] = []
        rows_by_vendor = {}
        for vendor, path in files.items():
            inserted, found = _read_one_file(conn, dataset, path, business_date, vendor)
            rows += inserted
            problems += found
            if vendor is not None:
                rows_by_vendor[vendor] = inserted
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("DROP TABLE IF EXISTS cei_rejects; DROP TABLE IF EXISTS cei_reject_scans")
    return IngestResult(
        dataset.name, [str(p) for p in files.values()], rows, problems, time.perf_counter() - started, rows_by_vendor
    )
