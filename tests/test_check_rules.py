"""Check rules are data: an engineer edits YAML; a bad file fails at load with file and line."""

import datetime as dt
import textwrap

import duckdb
import pytest

from asset_checks.engine import run_rules, table_context
from asset_checks.rules import RuleFileError, load_rule_file, load_rules
from asset_checks.vocabulary import RULE_TYPES

DAY = dt.date(2026, 10, 1)


def rules_from(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return load_rule_file(path, RULE_TYPES)


def test_the_shipped_rule_files_load_and_every_rule_says_why_it_blocks_or_warns():
    by_table = load_rules()
    assert {"quotes", "eod_prices", "fx_rates", "orders", "executions", "broker_trades", "broker_positions",
            "broker_cash", "corporate_actions", "securities", "accounts"} <= set(by_table)
    for rules in by_table.values():
        for rule in rules:
            assert rule.reason, f"{rule.source}: {rule.name} does not record why it blocks or warns"


@pytest.mark.parametrize("body, line, words", [
    ("quotes:\n  - null_tolerance: 0.0%\n    columns: [bid]\n  - nul_tolerance: 1%\n", 4, "unknown rule"),
    ("quotes:\n  - null_tolerance: lots\n    columns: [bid]\n", 2, "percentage"),
    ("quotes:\n  - crossed_quotes: true\n    blocking: maybe\n", 2, "true or false"),
    ("quotes:\n  - crossed_quotes: true\n    blocking: true\n    severity: warn\n", 2, "blocking rule must have severity error"),
    ("quotes:\n  - crossed_quotes: true\n  - crossed_quotes: true\n", 3, "already has a check named"),
    ("quotes:\n  - price_range: [1]\n", 2, "price_range takes"),
    ("quotes:\n  - crossed_quotes: true\n    colums: [bid]\n", 2, "does not take"),
    ("quotes: [\n", 2, "not valid YAML"),
])
def test_an_invalid_rule_file_names_the_file_and_the_line(tmp_path, body, line, words):
    with pytest.raises(RuleFileError) as error:
        rules_from(tmp_path, body)
    assert str(error.value).startswith(f"{tmp_path / 'rules.yaml'}:{line}:")
    assert words in str(error.value)


@pytest.fixture
def quotes_table():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw")
    conn.execute("""
        CREATE TABLE raw.quotes AS SELECT * FROM (VALUES
            (TIMESTAMP '2026-10-01 14:00:00', 'NVDA', NULL, 10.1, 'primary', DATE '2026-10-01', 'q.csv', 2),
            (TIMESTAMP '2026-10-01 14:00:01', 'NVDA', 10.0, 10.1, 'primary', DATE '2026-10-01', 'q.csv', 3),
            (TIMESTAMP '2026-10-01 14:00:00', 'ORCL', NULL, 20.1, 'primary', DATE '2026-10-01', 'q.csv', 4),
            (TIMESTAMP '2026-10-01 13:59:00', 'ORCL', 20.2, 20.1, 'primary', DATE '2026-10-01', 'q.csv', 5),
            (TIMESTAMP '2026-09-30 14:00:00', 'NVDA', NULL, NULL, 'primary', DATE '2026-09-30', 'q.csv', 2)
        ) AS t(ts, symbol, bid, ask, vendor, business_date, _source_file, _source_line)
    """)
    yield conn
    conn.close()


def test_a_failing_rule_says_what_share_failed_and_for_which_symbols(tmp_path, quotes_table):
    (rule,) = rules_from(tmp_path, "quotes:\n  - null_tolerance: 0.0%\n    columns: [bid]\n")
    ctx = table_context(quotes_table, "quotes", "raw.quotes", DAY, ("vendor", "symbol", "ts"))
    (outcome,) = run_rules(quotes_table, ctx, [rule])
    assert not outcome.passed and outcome.blocking and outcome.severity == "ERROR"
    assert outcome.failing_count == 2 and outcome.total_count == 4  # only the trading date is judged
    assert "50.0% of quotes rows of 2026-10-01 have null bid" in outcome.description
    assert "NVDA, ORCL" in outcome.description
    assert outcome.affected["symbol"] == ["NVDA", "ORCL"]
    assert {row["symbol"] for row in outcome.sample_rows} == {"NVDA", "ORCL"}
    metadata = outcome.metadata()
    assert metadata["failing_rate"] == 0.5 and metadata["rule"] == "null_tolerance: 0.0%"


def test_row_rules_and_table_rules_report_independently(tmp_path, quotes_table):
    rules = rules_from(tmp_path, """
        quotes:
          - crossed_quotes: true
            blocking: false
          - timestamp_monotonicity: non_decreasing
            by: [vendor, symbol]
            blocking: false
          - price_range: [0.01, 1000]
            columns: [ask]
    """)
    ctx = table_context(quotes_table, "quotes", "raw.quotes", DAY, ("vendor", "symbol", "ts"))
    crossed, ordering, price = run_rules(quotes_table, ctx, rules)
    assert not crossed.passed and crossed.severity == "WARN" and crossed.affected["symbol"] == ["ORCL"]
    assert not ordering.passed and ordering.failing_count == 1 and "ORCL" in ordering.description
    assert price.passed


def test_a_quote_that_goes_back_in_time_is_shown_with_the_one_before_it_and_its_file_and_line(tmp_path, quotes_table):
    (rule,) = rules_from(tmp_path, "quotes:\n  - timestamp_monotonicity: non_decreasing\n    by: [vendor, symbol]\n")
    ctx = table_context(quotes_table, "quotes", "raw.quotes", DAY, ("vendor", "symbol", "ts"))
    (outcome,) = run_rules(quotes_table, ctx, [rule])
    assert outcome.sample_rows == [{
        "vendor": "primary", "symbol": "ORCL", "ts": dt.datetime(2026, 10, 1, 13, 59),
        "previous_ts": dt.datetime(2026, 10, 1, 14, 0), "_source_file": "q.csv", "_source_line": 5,
    }]
