"""One page of ``/v2/aggs`` (pure): which bars, how many base bars, where the next page starts.

A query serves the windows whose start lies in ``[from, to]`` (both
inclusive) and whose end is not after sim-now (an open window is never
served), each from the trades reported by sim-now
(:func:`~chronox_stream.sim.history.bars_as_of`: a late trade only from its
report time on, as the WebSocket). ``from`` is first snapped to the start of
its window, as Polygon does ("we snap the from parameter to the beginning of
the resolution"): a day query from 04:00 New York serves that day's bar,
which starts at midnight. ``limit`` caps the *base* bars read (seconds,
minutes or days, see :func:`~chronox_stream.sim.aggregate.base_timespan`):
whole windows are served while their base bars fit, so a window that would
cross the cap is left for the next page, which starts at that window
(ascending: ``from`` moves to its start; descending: ``to`` does). A first
window alone larger than ``limit`` is served whole, so every page makes
progress.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

from chronox_stream.sim.aggregate import Agg, Timespan, base_timespan, merge, window
from chronox_stream.sim.history import bars_as_of
from chronox_stream.sim.market import Market
from chronox_stream.sim.sessions import calendar_range, ny_date


@dataclass(frozen=True, slots=True)
class AggQuery:
    symbol: str
    multiplier: int
    timespan: Timespan
    from_ns: int
    to_ns: int
    limit: int
    descending: bool


@dataclass(frozen=True, slots=True)
class Page:
    """Bars in the requested order; ``resume_ns`` is the next page's window start, if any."""

    bars: list[Agg]
    query_count: int
    resume_ns: int | None


def _days(query: AggQuery, now_ns: int) -> list[date]:
    first_known, last_known = calendar_range()
    last_end = min(window(query.timespan, query.multiplier, query.to_ns)[1], now_ns)
    first = max(ny_date(max(query.from_ns, 0)), first_known)
    last = min(ny_date(last_end - 1), last_known)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return days[::-1] if query.descending else days


def _groups(
    market: Market, query: AggQuery, now_ns: int, late_trades: bool
) -> Iterator[tuple[int, int, list[Agg]]]:
    """(start, end, base bars in time order) of each window, in the query's order."""
    base = base_timespan(query.timespan)
    key: tuple[int, int] | None = None
    group: list[Agg] = []
    for day in _days(query, now_ns):
        bars = bars_as_of(market, query.symbol, day, base, now_ns, late_trades=late_trades)
        for bar in reversed(bars) if query.descending else bars:
            bar_key = window(query.timespan, query.multiplier, bar.start_ns)
            if bar_key != key:
                if key is not None:
                    yield key[0], key[1], group[::-1] if query.descending else group
                key, group = bar_key, []
            group.append(bar)
    if key is not None:
        yield key[0], key[1], group[::-1] if query.descending else group


def aggregate_page(market: Market, query: AggQuery, now_ns: int, *, late_trades: bool) -> Page:
    """The first page of ``query`` as of ``now_ns`` (``late_trades``: the knob)."""
    query = replace(query, from_ns=window(query.timespan, query.multiplier, query.from_ns)[0])
    served: list[Agg] = []
    used = 0
    for start, end, bars in _groups(market, query, now_ns, late_trades):
        past_end = start > query.to_ns or end > now_ns
        before_start = start < query.from_ns
        if before_start if query.descending else past_end:
            break
        if past_end or before_start:
            continue
        if served and used + len(bars) > query.limit:
            return Page(served, used, start)
        served.append(merge(bars, start, end))
        used += len(bars)
    return Page(served, used, None)
