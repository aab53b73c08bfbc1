"""Gap maths (pure): the threshold rule, window splitting, and holes in coverage.

Coverage is about ranges *fetched*, not bars present: a minute without trades
has no bar, so the only way to know a range is done is to record that it was
fetched. Ranges are half-open ``[start, end)`` in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

DEFAULT_THRESHOLD = timedelta(days=7)
DEFAULT_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """``[start, end)``; empty when ``start >= end``."""

    start: datetime
    end: datetime

    @property
    def empty(self) -> bool:
        return self.start >= self.end


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping, non-touching union of ``intervals``."""
    merged: list[Interval] = []
    for current in sorted(i for i in intervals if not i.empty):
        if merged and current.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, current.end))
        else:
            merged.append(current)
    return merged


def subtract(target: Interval, covered: Iterable[Interval]) -> list[Interval]:
    """The parts of ``target`` that no interval of ``covered`` covers."""
    holes: list[Interval] = []
    cursor = target.start
    for interval in merge(covered):
        if interval.end <= cursor or interval.start >= target.end:
            continue
        if interval.start > cursor:
            holes.append(Interval(cursor, interval.start))
        cursor = max(cursor, interval.end)
    if cursor < target.end:
        holes.append(Interval(cursor, target.end))
    return holes


def split(interval: Interval, max_length: timedelta = DEFAULT_WINDOW) -> list[Interval]:
    """Consecutive windows of at most ``max_length`` that exactly tile ``interval``."""
    windows: list[Interval] = []
    start = interval.start
    while start < interval.end:
        end = min(start + max_length, interval.end)
        windows.append(Interval(start, end))
        start = end
    return windows


def default_start(
    last_backfill: datetime | None,
    *,
    end: datetime,
    now: datetime,
    lookback: timedelta,
    threshold: timedelta = DEFAULT_THRESHOLD,
) -> datetime | None:
    """The threshold rule: where a run without an explicit start begins (``None``: no run).

    Never backfilled: ``lookback`` before ``end``. Last backfill older than
    ``threshold``: from it. Recent (at most ``threshold`` ago): nothing to fetch.
    """
    if last_backfill is None:
        return end - lookback
    if now - last_backfill > threshold:
        return last_backfill
    return None


def trading_holes(
    requested: Interval,
    covered: Iterable[Interval],
    *,
    trading_days: Callable[[date, date], list[date]],
    trading_hours: Callable[[date], tuple[datetime, datetime]],
) -> list[Interval]:
    """Holes of ``requested`` not in ``covered``, trimmed to trading hours; none if none trade.

    A weekend, a holiday or a night alone is never a hole. A hole spanning many
    days stays one interval (from the first session it touches to the last), so
    it is fetched in as few windows as ``split`` allows.
    """
    holes: list[Interval] = []
    for hole in subtract(requested, covered):
        sessions = [
            Interval(max(opens, hole.start), min(closes, hole.end))
            for opens, closes in map(
                trading_hours, trading_days(hole.start.date() - timedelta(days=1), hole.end.date())
            )
        ]
        trading = [s for s in sessions if not s.empty]
        if trading:
            holes.append(Interval(trading[0].start, trading[-1].end))
    return holes


def api_windows(
    *,
    requested_start: datetime | None,
    end: datetime,
    now: datetime,
    covered: Iterable[Interval],
    last_backfill: datetime | None,
    lookback: timedelta,
    threshold: timedelta,
    window: timedelta,
    trading_days: Callable[[date, date], list[date]],
    trading_hours: Callable[[date], tuple[datetime, datetime]],
) -> list[Interval]:
    """The api windows to fetch for one symbol and timeframe, at most ``window`` long each.

    With an explicit start, every trading-hours hole of ``[start, end)`` is
    fetched. Without one, :func:`default_start` decides where the range begins.
    """
    start = requested_start or default_start(
        last_backfill, end=end, now=now, lookback=lookback, threshold=threshold
    )
    if start is None:
        return []
    holes = trading_holes(
        Interval(start, end), covered, trading_days=trading_days, trading_hours=trading_hours
    )
    return [piece for hole in holes for piece in split(hole, window)]
