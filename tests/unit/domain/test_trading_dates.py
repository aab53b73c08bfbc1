"""A date names a New York trading date: the rule, in winter and summer time and across a
DST switch, and the date of an instant."""

from datetime import UTC, date, datetime, timedelta

import pytest

from chronox_stream.domain.gaps import Interval, api_windows
from chronox_stream.domain.market_calendar import extended_hours, trading_days
from chronox_stream.domain.trading_dates import date_bound, date_end, date_start, trading_date

TICK = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "first", "after_last"),
    [
        # Winter time (EST, UTC-5).
        (date(2024, 1, 19), utc(2024, 1, 19, 5), utc(2024, 1, 20, 5)),
        # Summer time (EDT, UTC-4).
        (date(2024, 7, 16), utc(2024, 7, 16, 4), utc(2024, 7, 17, 4)),
        # Clocks go forward at 02:00 on 2024-03-10: a 23-hour day.
        (date(2024, 3, 10), utc(2024, 3, 10, 5), utc(2024, 3, 11, 4)),
        # Clocks go back at 02:00 on 2024-11-03: a 25-hour day.
        (date(2024, 11, 3), utc(2024, 11, 3, 4), utc(2024, 11, 4, 5)),
    ],
)
def test_a_date_runs_from_midnight_to_midnight_in_new_york(
    day: date, first: datetime, after_last: datetime
) -> None:
    assert date_start(day) == date_bound(day, end=False) == first
    assert date_end(day) == date_bound(day, end=True) == after_last - TICK
    assert trading_date(first) == day
    assert trading_date(after_last - TICK) == day
    assert trading_date(after_last) == day + timedelta(days=1)
    assert trading_date(first - TICK) == day - timedelta(days=1)


@pytest.mark.parametrize(
    ("day", "pre_market", "after_hours_close"),
    [
        (date(2024, 1, 19), utc(2024, 1, 19, 9), utc(2024, 1, 20, 1)),  # winter
        (date(2024, 7, 16), utc(2024, 7, 16, 8), utc(2024, 7, 17, 0)),  # summer
        (date(2024, 3, 11), utc(2024, 3, 11, 8), utc(2024, 3, 12, 0)),  # first day of EDT
        (date(2024, 11, 4), utc(2024, 11, 4, 9), utc(2024, 11, 5, 1)),  # first day of EST
        # Early close at 13:00 the day after Thanksgiving: after-hours end at 17:00.
        (date(2024, 11, 29), utc(2024, 11, 29, 9), utc(2024, 11, 29, 22)),
    ],
)
def test_a_date_holds_its_whole_extended_session(
    day: date, pre_market: datetime, after_hours_close: datetime
) -> None:
    assert extended_hours(day) == (pre_market, after_hours_close)
    assert date_start(day) < pre_market
    assert after_hours_close <= date_end(day)


def test_the_last_hour_of_a_winter_session_falls_on_the_next_utc_day() -> None:
    """19:00-20:00 New York on a Friday is 00:00-01:00 UTC on Saturday: still Friday's."""
    friday = date(2024, 1, 12)
    for minute in (utc(2024, 1, 13, 0, 0), utc(2024, 1, 13, 0, 59)):
        assert trading_date(minute) == friday
        assert date_start(friday) <= minute <= date_end(friday)
    saturday_utc = utc(2024, 1, 13, 0, 30)
    assert trading_days(trading_date(saturday_utc), trading_date(saturday_utc)) == [friday]


def test_a_zone_qualified_instant_keeps_its_meaning() -> None:
    instant = datetime.fromisoformat("2024-01-19T23:30:00-05:00")
    assert instant.astimezone(UTC) == utc(2024, 1, 20, 4, 30)
    assert trading_date(instant) == date(2024, 1, 19)
    assert trading_date(utc(2024, 1, 20, 4, 30)) == date(2024, 1, 19)


def test_the_end_of_year_9999_is_the_last_representable_instant() -> None:
    assert date_end(date(9999, 12, 31)) == datetime.max.replace(tzinfo=UTC)
    assert date_start(date(1970, 1, 1)) == utc(1970, 1, 1, 5)


def test_a_one_date_range_plans_the_whole_session_for_the_api() -> None:
    """``start`` = ``end`` = one date: the api phase fetches pre-market to after-hours close."""
    day = date(2024, 1, 19)
    windows = api_windows(
        requested_start=date_bound(day, end=False),
        end=date_bound(day, end=True),
        now=utc(2024, 2, 1),
        covered=[],
        last_backfill=None,
        lookback=timedelta(days=30),
        threshold=timedelta(days=7),
        window=timedelta(days=7),
        trading_days=trading_days,
        trading_hours=extended_hours,
    )
    assert windows == [Interval(utc(2024, 1, 19, 9), utc(2024, 1, 20, 1))]
