"""Trading dates (pure): what a ``YYYY-MM-DD`` names, and which date an instant falls on.

Polygon's REST API, its day flat files and the simulator all read a bare date as
a New York trading date, so chronox-stream does too: a date is the New York
calendar day, from 00:00 America/New_York to the last instant before the next
midnight there. That span holds the day's whole extended session (pre-market
04:00 to the after-hours close), in winter (UTC-5) and summer (UTC-4) time and
on the days the clocks change. A UTC day, which ends at 19:00 New York time in
winter, would cut off the last after-hours hour and take in the previous evening's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)
_RESOLUTION = timedelta(microseconds=1)


def date_start(day: date) -> datetime:
    """The first instant of the New York trading date ``day``, in UTC."""
    return datetime.combine(day, time.min, tzinfo=NEW_YORK).astimezone(UTC)


def date_end(day: date) -> datetime:
    """The last instant (inclusive) of the New York trading date ``day``, in UTC.

    The last representable instant when that day ends after it (9999-12-31 in New
    York ends in year 10000 in UTC).
    """
    try:
        return date_start(day + timedelta(days=1)) - _RESOLUTION
    except OverflowError:
        return _LAST_INSTANT


def date_bound(day: date, *, end: bool) -> datetime:
    """The instant a date stands for as a range's ``start`` (its first instant) or ``end``
    (its last, inclusive): the one rule behind requests, the CLI and the benchmarks."""
    return date_end(day) if end else date_start(day)


def trading_date(instant: datetime) -> date:
    """The New York calendar date of an aware ``instant`` (the trading date it belongs to)."""
    return instant.astimezone(NEW_YORK).date()
