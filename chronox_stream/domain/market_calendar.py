"""The NYSE trading calendar (``exchange_calendars``, XNYS) and the extended-hours day.

Polygon's aggregates cover pre-market (04:00), the regular session and
after-hours (to 20:00, or to 17:00 after a 13:00 early close), New York time.
Gap detection judges coverage against these windows, so weekends and holidays
are never gaps.

``exchange_calendars`` (and pandas under it, about 0.6 s of CPU to import) is imported
when the calendar is first built: most processes that import this module (the
simulator, a worker that only aggregates ticks, the ``chronox`` commands) need only
``NEW_YORK``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from chronox_stream.domain.trading_dates import NEW_YORK as NEW_YORK

if TYPE_CHECKING:
    import exchange_calendars as xc

PRE_MARKET_OPEN = time(4, 0)
AFTER_HOURS_CLOSE = time(20, 0)
AFTER_HOURS_AFTER_EARLY_CLOSE = timedelta(hours=4)


@lru_cache(maxsize=1)
def _calendar() -> xc.ExchangeCalendar:
    import exchange_calendars

    return exchange_calendars.get_calendar("XNYS")


def load_calendar() -> None:
    """Build the calendar now: that takes about a second, which a worker pays at start
    rather than in its first request."""
    _calendar()


def trading_days(first: date, last: date) -> list[date]:
    """NYSE sessions from ``first`` to ``last`` inclusive."""
    if last < first:
        return []
    sessions = _calendar().sessions_in_range(first, last)
    return [s.date() for s in sessions]


@lru_cache(maxsize=4096)
def extended_hours(day: date) -> tuple[datetime, datetime]:
    """UTC [start, end) of the day's trading, pre-market to after-hours close."""
    close = _calendar().session_close(day).to_pydatetime()
    regular_close = close.astimezone(NEW_YORK).time()
    start = datetime.combine(day, PRE_MARKET_OPEN, tzinfo=NEW_YORK)
    if regular_close < time(16, 0):
        end = close + AFTER_HOURS_AFTER_EARLY_CLOSE
    else:
        end = datetime.combine(day, AFTER_HOURS_CLOSE, tzinfo=NEW_YORK)
    return start.astimezone(UTC), end.astimezone(UTC)
