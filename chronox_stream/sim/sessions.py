"""The simulator's view of the NYSE calendar (``exchange_calendars``, XNYS), in epoch nanoseconds.

A trading day has three sessions, New York time: pre-market 04:00 to the
regular open, the regular session (09:30 to 16:00, or to 13:00 on an early
close) and after-hours to 20:00 (to the early close plus four hours, i.e.
17:00, as :func:`chronox_stream.domain.market_calendar.extended_hours` says, so the
simulator and gap detection agree). Weekends, holidays and days outside the
calendar's range have no sessions at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal

import exchange_calendars as xc
import pandas as pd

from chronox_stream.domain.market_calendar import NEW_YORK, extended_hours

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
Phase = Literal["pre", "regular", "post", "closed"]


@dataclass(frozen=True, slots=True)
class TradingDay:
    """Session bounds of one trading day, each an epoch-ns instant; ranges are ``[start, end)``."""

    day: date
    pre_open_ns: int
    open_ns: int
    close_ns: int
    post_close_ns: int

    @property
    def early_close(self) -> bool:
        return self.close_ns - self.open_ns < 6 * 3600 * NS_PER_S

    def phase(self, ns: int) -> Phase:
        """Which session ``ns`` falls in (``closed`` outside the extended day)."""
        if ns < self.pre_open_ns or ns >= self.post_close_ns:
            return "closed"
        if ns < self.open_ns:
            return "pre"
        return "regular" if ns < self.close_ns else "post"


@dataclass(frozen=True, slots=True)
class Closure:
    """A day the market is closed or closes early, for ``/v1/marketstatus/upcoming``."""

    day: date
    name: str
    status: Literal["closed", "early-close"]
    open_ns: int | None = None
    close_ns: int | None = None


@lru_cache(maxsize=1)
def _xnys() -> xc.ExchangeCalendar:
    return xc.get_calendar("XNYS")


def to_ns(moment: datetime) -> int:
    """Epoch nanoseconds of an aware datetime (exact for whole microseconds)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    """Aware UTC datetime of epoch nanoseconds (truncated to microseconds)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def ny_date(ns: int) -> date:
    """The New York calendar date of an instant."""
    return from_ns(ns).astimezone(NEW_YORK).date()


@lru_cache(maxsize=8192)
def ny_midnight_ns(day: date) -> int:
    """Start of ``day`` in New York (where a day bar starts), epoch ns."""
    return to_ns(datetime(day.year, day.month, day.day, tzinfo=NEW_YORK))


def calendar_range() -> tuple[date, date]:
    """First and last day the calendar knows; outside it nothing trades."""
    cal = _xnys()
    return cal.first_session.date(), cal.last_session.date()


def _in_range(day: date) -> bool:
    first, last = calendar_range()
    return first <= day <= last


@lru_cache(maxsize=8192)
def trading_day(day: date) -> TradingDay | None:
    """The sessions of ``day``, or ``None`` on weekends, holidays and outside the calendar."""
    if not _in_range(day) or not _xnys().is_session(pd.Timestamp(day)):
        return None
    cal = _xnys()
    session = pd.Timestamp(day)
    start, end = extended_hours(day)
    return TradingDay(
        day=day,
        pre_open_ns=to_ns(start),
        open_ns=to_ns(cal.session_open(session).to_pydatetime()),
        close_ns=to_ns(cal.session_close(session).to_pydatetime()),
        post_close_ns=to_ns(end),
    )


def previous_trading_day(day: date) -> TradingDay | None:
    """The last trading day strictly before ``day`` (within two weeks), if any."""
    for back in range(1, 15):
        found = trading_day(day - timedelta(days=back))
        if found is not None:
            return found
    return None


def trading_days(first: date, last: date) -> list[TradingDay]:
    """Trading days from ``first`` to ``last`` inclusive."""
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [found for d in days if (found := trading_day(d)) is not None]


def _names(first: date, last: date) -> dict[date, str]:
    """Holiday and early-close names the calendar knows in ``[first, last]``."""
    cal = _xnys()
    start, end = pd.Timestamp(first), pd.Timestamp(last)
    names: dict[date, str] = {}
    calendars = [cal.regular_holidays] + [hc for _, hc in cal.special_closes]
    for holidays in calendars:
        if holidays is None:
            continue
        for stamp, name in holidays.holidays(start, end, return_name=True).items():
            names[stamp.date()] = str(name)
    return names


def closures(first: date, last: date) -> list[Closure]:
    """Weekday holidays and early closes from ``first`` to ``last``, in date order."""
    names = _names(first, last)
    found: list[Closure] = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        if day.weekday() >= 5 or not _in_range(day):
            continue
        session = trading_day(day)
        if session is None:
            found.append(Closure(day, names.get(day, "Market Holiday"), "closed"))
        elif session.early_close:
            found.append(
                Closure(
                    day,
                    names.get(day, "Early Close"),
                    "early-close",
                    session.open_ns,
                    session.close_ns,
                )
            )
    return found
