"""The fund's trading calendar and the daily partitions built on it.

The books follow one exchange's sessions (NYSE by default, ``CEI_CALENDAR`` to change):
weekends and that exchange's holidays are not partitions. Securities quoted on other
exchanges follow their own sessions (see the landing spec); that is the market-data checks'
business, not the partitioning's.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache

import dagster as dg

# Partitions cover any trading date a landing root may hold: from 2000 on, through a
# horizon far enough ahead that no schedule runs out of partitions.
FIRST_PARTITION = dt.date(2000, 1, 3)
CALENDAR_HORIZON = dt.date(2035, 12, 31)


def calendar_name() -> str:
    return os.environ.get("CEI_CALENDAR", "XNYS")


@lru_cache(maxsize=8)
def _exchange_calendar(name: str):
    import exchange_calendars as xcals

    # Always explicit bounds: the library's default window moves with today's date.
    return xcals.get_calendar(name, start=FIRST_PARTITION.isoformat(), end=CALENDAR_HORIZON.isoformat())


@lru_cache(maxsize=8)
def _sessions(name: str) -> tuple[dt.date, ...]:
    return tuple(d.date() for d in _exchange_calendar(name).sessions)


def sessions(name: str | None = None) -> tuple[dt.date, ...]:
    return _sessions(name or calendar_name())


def is_trading_day(day: dt.date, name: str | None = None) -> bool:
    import bisect

    all_sessions = sessions(name)
    i = bisect.bisect_left(all_sessions, day)
    return i < len(all_sessions) and all_sessions[i] == day


def previous_trading_day(day: dt.date, name: str | None = None) -> dt.date:
    import bisect

    all_sessions = sessions(name)
    i = bisect.bisect_left(all_sessions, day)
    if i == 0:
        raise ValueError(f"no trading day before {day} on the {name or calendar_name()} calendar")
    return all_sessions[i - 1]


def trading_days_between(start: dt.date, end: dt.date, name: str | None = None) -> list[dt.date]:
    return [d for d in sessions(name) if start <= d <= end]


@lru_cache(maxsize=8)
def _trading_day_partitions(name: str) -> dg.TimeWindowPartitionsDefinition:
    session_set = set(_sessions(name))
    holidays = []
    day = FIRST_PARTITION
    while day <= CALENDAR_HORIZON:
        if day.weekday() < 5 and day not in session_set:
            holidays.append(dt.datetime(day.year, day.month, day.day))
        day += dt.timedelta(days=1)
    # Weekday partitions minus the exchange's holidays; end_offset=1 opens today's
    # partition during the session, for the intraday market-data job.
    return dg.TimeWindowPartitionsDefinition(
        start=FIRST_PARTITION.isoformat(),
        fmt="%Y-%m-%d",
        cron_schedule="0 0 * * 1-5",
        timezone="UTC",
        exclusions=holidays,
        end_offset=1,
    )


def trading_day_partitions() -> dg.TimeWindowPartitionsDefinition:
    return _trading_day_partitions(calendar_name())


def parse_trading_day(text: str) -> dt.date:
    """A partition key from user input, or ValueError saying why it is not one."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a date (expected YYYY-MM-DD)") from None
    if not FIRST_PARTITION <= day <= CALENDAR_HORIZON:
        raise ValueError(f"{day} is outside the partitions ({FIRST_PARTITION} to {CALENDAR_HORIZON})")
    if not is_trading_day(day):
        raise ValueError(f"{day} is not a trading day on the {calendar_name()} calendar (weekend or holiday)")
    return day
