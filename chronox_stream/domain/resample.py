"""Folding 1-minute bars into wider bars (pure), as Polygon aggregates them.

open = first, close = last, high = max, low = min, volume = sum,
vwap = volume-weighted mean of the minute vwaps, transactions = sum. A missing
vwap or transaction count in any input leaves it unknown in the output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.timeframes import Timeframe
from chronox_stream.domain.windows import window_start


def resample(minute_bars: Iterable[Bar], timeframe: Timeframe) -> list[Bar]:
    """Bars of ``timeframe`` from 1m bars of one symbol, in time order."""
    if timeframe.name == "1m":
        return sorted(minute_bars, key=lambda b: b.ts)
    groups: dict[datetime, list[Bar]] = {}
    for bar in sorted(minute_bars, key=lambda b: b.ts):
        groups.setdefault(window_start(bar.ts, timeframe), []).append(bar)
    return [_fold(start, bars, timeframe) for start, bars in groups.items()]


def _fold(start: datetime, bars: list[Bar], timeframe: Timeframe) -> Bar:
    volume = sum(b.volume for b in bars)
    vwap = None
    if all(b.vwap is not None for b in bars) and volume > 0:
        vwap = sum(b.vwap * b.volume for b in bars if b.vwap is not None) / volume
    transactions = None
    if all(b.transactions is not None for b in bars):
        transactions = sum(b.transactions for b in bars if b.transactions is not None)
    return replace(
        bars[0],
        tf=timeframe.name,
        ts=start,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=volume,
        vwap=vwap,
        transactions=transactions,
    )
