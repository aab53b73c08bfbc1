"""Final (corrected) bars per symbol and New York day, memoised: what REST and flat files serve.

Caches are sized for a handful of symbols over a few months of minutes (a
base-bar ``limit`` of 50000 is about 70 days) and years of day bars.

Every trade counts here, late or not: late reporting only changes what the
WebSocket shows while the day is running.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from chronox_stream.sim.aggregate import Agg, Timespan, fold_columns, fold_span
from chronox_stream.sim.market import Market
from chronox_stream.sim.sessions import NS_PER_MIN, NS_PER_S, ny_midnight_ns, trading_day


@lru_cache(maxsize=256)
def minute_bars(market: Market, symbol: str, day: date) -> tuple[Agg, ...]:
    """The day's 1-minute bars, in time order."""
    return tuple(fold_columns(market.columns(symbol, day), NS_PER_MIN))


@lru_cache(maxsize=16)
def second_bars(market: Market, symbol: str, day: date) -> tuple[Agg, ...]:
    """The day's 1-second bars, in time order."""
    return tuple(fold_columns(market.columns(symbol, day), NS_PER_S))


@lru_cache(maxsize=8192)
def day_bar(market: Market, symbol: str, day: date) -> Agg | None:
    """The day bar (New York midnight to midnight, extended hours included), if any."""
    if trading_day(day) is None:
        return None
    start = ny_midnight_ns(day)
    end = ny_midnight_ns(date.fromordinal(day.toordinal() + 1))
    return fold_span(market.columns(symbol, day), start, end)


def base_bars(market: Market, symbol: str, day: date, timespan: Timespan) -> tuple[Agg, ...]:
    """The day's base bars of ``timespan`` (second, minute or day)."""
    if timespan == "second":
        return second_bars(market, symbol, day)
    if timespan == "minute":
        return minute_bars(market, symbol, day)
    bar = day_bar(market, symbol, day)
    return (bar,) if bar is not None else ()
