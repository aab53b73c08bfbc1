"""Bars from trades and wider bars from narrower ones (pure), by Polygon's rules.

Folding trades into one bar (:func:`fold` over records; :func:`fold_columns`
and :func:`fold_span` are the same rules vectorised over a day's columns):

- the bar exists only if at least one trade may set open/close; otherwise
  there is **no bar** (a minute with no eligible trades has none);
- open/close: first/last trade (SIP time order) that may set open/close;
- high/low: max/min over trades that may set high/low;
- volume ``v``: sum of sizes of trades that count in volume;
- ``n``: the number of trades that count in volume;
- ``vw`` = ``round(sum(cents * size) / (100 * v), 4)`` over those trades, or
  the close when ``v`` is 0 (a bar of only condition-38 trades).

Minute multiples and hours roll up minute bars, windows aligned to the epoch
(hence to the hour in New York too); days fold all of the day's trades (incl.
extended hours) into one bar starting at New York midnight; multi-day, week
(Sunday), month, quarter and year bars roll up day bars, a multiplier ``m``
grouping periods whose index since 1970 is a multiple of ``m``. Seconds fold
trades per epoch-aligned second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from chronox_stream.domain.conditions import (
    NO_HIGH_LOW,
    NO_OPEN_CLOSE,
    NO_VOLUME,
    ODD_LOT,
    counts_in_volume,
    sets_high_low,
    sets_open_close,
)
from chronox_stream.sim.market import I64, Columns, Trade
from chronox_stream.sim.sessions import NS_PER_MIN, NS_PER_S, ny_date, ny_midnight_ns

Timespan = Literal["second", "minute", "hour", "day", "week", "month", "quarter", "year"]
TIMESPANS: tuple[Timespan, ...] = (
    "second", "minute", "hour", "day", "week", "month", "quarter", "year",
)  # fmt: skip
_FIXED_NS: dict[str, int] = {"second": NS_PER_S, "minute": NS_PER_MIN, "hour": 60 * NS_PER_MIN}
_EPOCH = date(1970, 1, 1)
_FIRST_SUNDAY = date(1970, 1, 4)


@dataclass(frozen=True, slots=True)
class Agg:
    """One bar over ``[start_ns, end_ns)``; ``notional`` is sum(cents * size) of volume trades."""

    start_ns: int
    end_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    notional: int
    transactions: int

    @property
    def vwap(self) -> float:
        if self.volume == 0:
            return self.close
        return round(self.notional / (100 * self.volume), 4)

    @property
    def start_ms(self) -> int:
        return self.start_ns // 1_000_000

    @property
    def end_ms(self) -> int:
        return self.end_ns // 1_000_000


def fold(trades: Sequence[Trade], start_ns: int, end_ns: int) -> Agg | None:
    """The bar of ``trades`` (in SIP time order) over ``[start_ns, end_ns)``, or ``None``."""
    priced = [t for t in trades if sets_open_close(t.conditions)]
    if not priced:
        return None
    extremes = [t.cents for t in trades if sets_high_low(t.conditions)]
    counted = [t for t in trades if counts_in_volume(t.conditions)]
    return Agg(
        start_ns=start_ns,
        end_ns=end_ns,
        open=priced[0].price,
        high=max(extremes) / 100,
        low=min(extremes) / 100,
        close=priced[-1].price,
        volume=sum(t.size for t in counted),
        notional=sum(t.cents * t.size for t in counted),
        transactions=len(counted),
    )


def merge(bars: Sequence[Agg], start_ns: int, end_ns: int) -> Agg:
    """One bar over ``[start_ns, end_ns)`` from non-empty ``bars`` in time order."""
    return Agg(
        start_ns=start_ns,
        end_ns=end_ns,
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=sum(b.volume for b in bars),
        notional=sum(b.notional for b in bars),
        transactions=sum(b.transactions for b in bars),
    )


def _excluded(cols: Columns, codes: frozenset[int]) -> npt.NDArray[np.bool_]:
    """Per trade: does any of its conditions (the one condition, the odd lot) fall in ``codes``?"""
    return np.isin(cols.condition, list(codes)) | (cols.odd_lot & (ODD_LOT in codes))


def _fold_groups(cols: Columns, firsts: I64, windows: list[tuple[int, int]]) -> list[Agg]:
    """Bars of the trade groups starting at indices ``firsts``; groups without a bar dropped."""
    n = len(cols)
    high_low, open_close, volume = (
        ~_excluded(cols, codes) for codes in (NO_HIGH_LOW, NO_OPEN_CLOSE, NO_VOLUME)
    )
    index = np.arange(n)
    first_oc = np.minimum.reduceat(np.where(open_close, index, n), firsts).tolist()
    last_oc = np.maximum.reduceat(np.where(open_close, index, -1), firsts).tolist()
    high = np.maximum.reduceat(np.where(high_low, cols.cents, -1), firsts).tolist()
    low = np.minimum.reduceat(np.where(high_low, cols.cents, np.iinfo(np.int64).max), firsts)
    sizes = np.where(volume, cols.size, 0)
    volumes = np.add.reduceat(sizes, firsts).tolist()
    notional = np.add.reduceat(sizes * cols.cents, firsts).tolist()
    counts = np.add.reduceat(volume.astype(np.int64), firsts).tolist()
    cents = cols.cents.tolist()
    return [
        Agg(
            start_ns=start,
            end_ns=end,
            open=cents[first_oc[g]] / 100,
            high=high[g] / 100,
            low=int(low[g]) / 100,
            close=cents[last_oc[g]] / 100,
            volume=volumes[g],
            notional=notional[g],
            transactions=counts[g],
        )
        for g, (start, end) in enumerate(windows)
        if first_oc[g] < n
    ]


def fold_columns(cols: Columns, width_ns: int) -> list[Agg]:
    """:func:`fold` of every epoch-aligned ``width_ns`` window, vectorised over a day's trades."""
    if len(cols) == 0:
        return []
    keys = cols.sip_ns // width_ns
    firsts = np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1))
    starts = (keys[firsts] * width_ns).tolist()
    return _fold_groups(cols, firsts, [(s, s + width_ns) for s in starts])


def fold_span(cols: Columns, start_ns: int, end_ns: int) -> Agg | None:
    """:func:`fold` of all of ``cols`` as one bar over ``[start_ns, end_ns)``."""
    if len(cols) == 0:
        return None
    bars = _fold_groups(cols, np.zeros(1, dtype=np.int64), [(start_ns, end_ns)])
    return bars[0] if bars else None


def base_timespan(timespan: Timespan) -> Timespan:
    """The bars a wider bar rolls up (what the REST ``limit`` counts)."""
    if timespan in ("second", "minute", "day"):
        return timespan
    return "minute" if timespan == "hour" else "day"


def window(timespan: Timespan, multiplier: int, ns: int) -> tuple[int, int]:
    """``[start, end)`` in epoch ns of the ``multiplier`` x ``timespan`` window holding ``ns``."""
    if timespan in _FIXED_NS:
        width = _FIXED_NS[timespan] * multiplier
        start = ns - ns % width
        return start, start + width
    index = _period_index(timespan, ny_date(ns)) // multiplier * multiplier
    return (
        ny_midnight_ns(_period_start(timespan, index)),
        ny_midnight_ns(_period_start(timespan, index + multiplier)),
    )


def _period_index(timespan: Timespan, day: date) -> int:
    if timespan == "day":
        return (day - _EPOCH).days
    if timespan == "week":
        return (day - _FIRST_SUNDAY).days // 7
    months = (day.year - 1970) * 12 + day.month - 1
    if timespan == "month":
        return months
    return months // 3 if timespan == "quarter" else day.year - 1970


def _period_start(timespan: Timespan, index: int) -> date:
    if timespan == "day":
        return _EPOCH + timedelta(days=index)
    if timespan == "week":
        return _FIRST_SUNDAY + timedelta(weeks=index)
    months = {"month": index, "quarter": index * 3, "year": index * 12}[timespan]
    return date(1970 + months // 12, months % 12 + 1, 1)


def roll_up(base: Iterable[Agg], timespan: Timespan, multiplier: int) -> list[Agg]:
    """Bars of ``multiplier`` x ``timespan`` from time-ordered base bars (see module doc)."""
    groups: dict[tuple[int, int], list[Agg]] = {}
    for bar in base:
        groups.setdefault(window(timespan, multiplier, bar.start_ns), []).append(bar)
    return [merge(bars, start, end) for (start, end), bars in groups.items()]
