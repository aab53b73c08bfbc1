"""Split-adjusted aggregates (pure): what ``/v2/aggs`` serves with ``adjusted=true``.

A bar whose days share one price factor ``f`` (every second, minute, hour and
day bar: a factor is per New York day) is the unadjusted bar with ``o``,
``h``, ``l``, ``c`` and ``vw`` divided by ``f`` and ``v`` multiplied by it;
``n`` (trades) is unchanged. A wider bar that spans a split (a week, a month)
merges its adjusted base bars: open of the first, close of the last, high and
low over all, volume and trades summed, vwap from the summed notional (which
a split does not change) over the adjusted volume. The factor counts the
splits executed by sim-now's New York date, as Polygon adjusts for the splits
it knows.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from chronox_stream.sim.aggregate import Agg, Timespan, base_timespan
from chronox_stream.sim.corporate import price_factor
from chronox_stream.sim.history import base_bars
from chronox_stream.sim.market import Market
from chronox_stream.sim.sessions import ny_date


def _volume(volume: float) -> float | int:
    return int(volume) if float(volume).is_integer() else volume


def scaled_json(bar: Agg, factor: float) -> dict[str, Any]:
    """A bar as in ``results`` of ``/v2/aggs``, adjusted by one factor."""
    return {
        "v": _volume(bar.volume * factor),
        "vw": bar.vwap / factor,
        "o": bar.open / factor,
        "c": bar.close / factor,
        "h": bar.high / factor,
        "l": bar.low / factor,
        "t": bar.start_ms,
        "n": bar.transactions,
    }


def _days(bar: Agg) -> list[date]:
    first, last = ny_date(bar.start_ns), ny_date(bar.end_ns - 1)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def adjusted_json(
    market: Market, symbol: str, timespan: Timespan, bar: Agg, now_ns: int
) -> dict[str, Any]:
    """One served (unadjusted, merged) bar as ``adjusted=true`` serves it."""
    today = ny_date(now_ns)
    days = _days(bar)
    factors = {d: price_factor(market.splits, symbol, d, executed_by=today) for d in days}
    if len(set(factors.values())) == 1:
        return scaled_json(bar, factors[days[0]])
    parts = [
        (base, factors[day])
        for day in days
        for base in base_bars(market, symbol, day, base_timespan(timespan))
        if bar.start_ns <= base.start_ns < bar.end_ns
    ]
    first, first_factor = parts[0]
    last, last_factor = parts[-1]
    volume = sum(b.volume * f for b, f in parts)
    notional = sum(b.notional for b, _ in parts)
    close = last.close / last_factor
    return {
        "v": _volume(volume),
        "vw": round(notional / (100 * volume), 4) if volume else close,
        "o": first.open / first_factor,
        "c": close,
        "h": max(b.high / f for b, f in parts),
        "l": min(b.low / f for b, f in parts),
        "t": bar.start_ms,
        "n": sum(b.transactions for b, _ in parts),
    }
