"""The daily graph runs after the close on trading days; nothing runs on holidays."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from cei_assets.jobs import daily_books_schedule, intraday_market_data_schedule

NEW_YORK = ZoneInfo("America/New_York")


def evaluate(schedule, when: dt.datetime):
    context = dg.build_schedule_context(scheduled_execution_time=when)
    return schedule(context)


def test_the_daily_books_run_after_the_close_for_that_trading_date():
    request = evaluate(daily_books_schedule, dt.datetime(2026, 10, 1, 18, 30, tzinfo=NEW_YORK))
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-10-01"


def test_no_daily_run_on_an_exchange_holiday():
    skip = evaluate(daily_books_schedule, dt.datetime(2026, 11, 26, 18, 30, tzinfo=NEW_YORK))  # Thanksgiving
    assert isinstance(skip, dg.SkipReason) and "not a trading day" in skip.skip_message


def test_intraday_quotes_reload_under_distinct_run_keys_during_the_session():
    first = evaluate(intraday_market_data_schedule, dt.datetime(2026, 10, 1, 10, 0, tzinfo=NEW_YORK))
    second = evaluate(intraday_market_data_schedule, dt.datetime(2026, 10, 1, 10, 15, tzinfo=NEW_YORK))
    assert first.partition_key == second.partition_key == "2026-10-01"
    assert first.run_key != second.run_key
