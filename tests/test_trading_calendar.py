"""The books follow NYSE sessions: weekends and exchange holidays are not partitions."""

import datetime as dt

import pytest

from cei_assets.trading_calendar import (
    parse_trading_day,
    previous_trading_day,
    trading_day_partitions,
)


def test_holidays_and_weekends_are_not_partitions():
    keys = set(trading_day_partitions().get_partition_keys())
    assert "2025-11-28" in keys  # the Friday after Thanksgiving trades (half day)
    assert "2025-11-27" not in keys  # Thanksgiving
    assert "2025-12-25" not in keys  # Christmas
    assert "2025-11-29" not in keys  # a Saturday
    assert "2001-09-11" not in keys  # markets closed after the attacks


def test_partitions_reach_back_to_2000():
    keys = trading_day_partitions().get_partition_keys()
    assert keys[0] == "2000-01-03"
    assert "2008-09-15" in keys


def test_previous_trading_day_skips_holidays_and_weekends():
    assert previous_trading_day(dt.date(2025, 11, 28)) == dt.date(2025, 11, 26)
    assert previous_trading_day(dt.date(2026, 1, 5)) == dt.date(2026, 1, 2)


@pytest.mark.parametrize("text, reason", [
    ("2026-13-01", "not a date"),
    ("2026-01-03", "not a trading day"),
    ("1999-12-31", "outside the partitions"),
])
def test_a_date_that_is_not_a_trading_day_is_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_trading_day(text)
