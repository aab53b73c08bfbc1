"""Bars per symbol and New York day: final ones (memoised), and as REST shows them at sim-now.

Final bars count every trade, late or not: they are what flat files hold
(published after the day) and what REST serves once every trade of a day is
reported. Caches are sized for a handful of symbols over a few months of
minutes (a base-bar ``limit`` of 50000 is about 70 days) and years of day bars.

*As of* sim-now, a trade counts only once it is reported: at its report time
with the late-trades knob on (up to 15 minutes after its minute), at its SIP
time with it off, as the WebSocket sends it. So a REST bar of a minute that
closed a moment ago lacks the late trades still to come, equals the last
``AM`` sent for it so far, and converges to the final bar; on a day whose
trades are all reported the final bars serve unchanged.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from chronox_stream.sim.aggregate import Agg, Timespan, fold_columns, fold_span
from chronox_stream.sim.market import Columns, Market, Trade
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


def reported_columns(cols: Columns, now_ns: int, *, late_trades: bool) -> Columns | None:
    """The trades of ``cols`` reported by ``now_ns`` (see the module doc); ``None`` if all are."""
    keep = (cols.report_ns if late_trades else cols.sip_ns) <= now_ns
    return None if bool(keep.all()) else cols.select(keep)


def bars_as_of(
    market: Market, symbol: str, day: date, timespan: Timespan, now_ns: int, *, late_trades: bool
) -> tuple[Agg, ...]:
    """:func:`base_bars` of ``day`` from the trades reported by ``now_ns`` only."""
    cols = reported_columns(market.columns(symbol, day), now_ns, late_trades=late_trades)
    if cols is None:
        return base_bars(market, symbol, day, timespan)
    if timespan == "second":
        return tuple(fold_columns(cols, NS_PER_S))
    if timespan == "minute":
        return tuple(fold_columns(cols, NS_PER_MIN))
    end = ny_midnight_ns(date.fromordinal(day.toordinal() + 1))
    bar = fold_span(cols, ny_midnight_ns(day), end)
    return (bar,) if bar is not None else ()


def day_bar_as_of(
    market: Market, symbol: str, day: date, now_ns: int, *, late_trades: bool
) -> Agg | None:
    """:func:`day_bar` from the trades reported by ``now_ns`` only."""
    bars = bars_as_of(market, symbol, day, "day", now_ns, late_trades=late_trades)
    return bars[0] if bars else None


def trades_as_of(
    market: Market, symbol: str, day: date, now_ns: int, *, late_trades: bool
) -> tuple[Trade, ...]:
    """The day's trades reported by ``now_ns``, in SIP time order."""
    return tuple(
        t for t in market.day(symbol, day) if (t.report_ns if late_trades else t.sip_ns) <= now_ns
    )
