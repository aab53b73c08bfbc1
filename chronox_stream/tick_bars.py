"""Ticks to bars in event time (pure): windows, Polygon's fold rules, our own watermark.

Folding trades into a bar follows the SIP rules of :mod:`chronox_stream.conditions`:

- open/close: the first/last trade in SIP order (time, then sequence) that may set them;
- high/low: over the trades that may set them;
- volume and transactions: over the trades that count in volume;
- vwap: ``round(sum(price * size) / volume, 4)`` over those trades (the close when the
  volume is 0), summed exactly in units of 1/10,000 of a dollar so that the order in
  which ticks arrive cannot change it;
- a window with no trade that may set open/close has no bar.

Windows: minute multiples and hours are aligned to the epoch; a day runs from
midnight to midnight in New York (extended hours included), as Polygon's day bars.

Event time: the watermark is the latest tick time seen minus ``grace_ms``. A
window closes, and its bar is emitted, once the watermark reaches its end; a
tick for a window that is still open is folded in whatever its arrival order.
A tick for a closed window younger than ``late_limit_ms`` (measured from the
window's end to the watermark) is folded in and its bar emitted again, corrected;
an older one is dropped and counted. State is purged once a window is past the
late limit. Faust's own window-close callback runs on the wall clock, which
means nothing on replayed data; this one runs on the data.

The state lives in a ``MutableMapping`` (a Faust table in workers, a dict in
tests); an in-memory index of open windows is rebuilt from it on start.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from chronox_stream.bars import Bar
from chronox_stream.conditions import counts_in_volume, sets_high_low, sets_open_close
from chronox_stream.ticks import Tick
from chronox_stream.timeframes import TIMEFRAMES, Timeframe
from chronox_stream.windows import window_end, window_start

PRICE_UNITS = 10_000  # prices are summed in 1/10,000 of a dollar: sub-penny prices stay exact
HOUR_MS = 3_600_000


@lru_cache(maxsize=4096)
def _day_window(hour: int) -> tuple[int, int]:
    """The New York day containing the hour ``hour`` (hours since the epoch), in epoch ms."""
    day = TIMEFRAMES["1d"]
    start = window_start(datetime.fromtimestamp(hour * 3600, tz=UTC), day)
    return int(start.timestamp() * 1000), int(window_end(start, day).timestamp() * 1000)


def window_of(ts: int, timeframe: Timeframe) -> tuple[int, int]:
    """``[start, end)`` in epoch ms of the ``timeframe`` window containing ``ts`` (epoch ms)."""
    if timeframe.timespan == "day":
        return _day_window(ts // HOUR_MS)
    width = timeframe.seconds * 1000
    start = ts - ts % width
    return start, start + width


class Partial(NamedTuple):
    """What one window has folded so far; prices are ``None`` until a trade may set them.

    A named tuple, not a dataclass: one is made per tick and timeframe, and a tuple is
    made several times faster.
    """

    start: int
    end: int
    open: float | None = None
    open_at: tuple[int, int] = (0, 0)
    close: float | None = None
    close_at: tuple[int, int] = (0, 0)
    high: float | None = None
    low: float | None = None
    volume: int = 0
    notional: int = 0
    transactions: int = 0
    emitted: bool = False

    def bar(self, symbol: str, timeframe: Timeframe) -> Bar | None:
        """The window's bar, or ``None`` while no trade may set its open and close."""
        if self.open is None or self.close is None or self.high is None or self.low is None:
            return None
        vwap = self.close
        if self.volume:
            vwap = round(self.notional / (PRICE_UNITS * self.volume), 4)
        return Bar(
            symbol=symbol,
            tf=timeframe.name,
            ts=datetime.fromtimestamp(self.start / 1000, tz=UTC),
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=float(self.volume),
            vwap=vwap,
            transactions=self.transactions,
        )


def fold_tick(partial: Partial, tick: Tick) -> Partial:
    """``partial`` with ``tick`` folded in, whatever the order ticks arrive in."""
    (start, end, open_, open_at, close, close_at, high, low, volume, notional, transactions,
     emitted) = partial  # fmt: skip
    conditions = tick.conditions
    price, order = tick.price, tick.order
    if not conditions or sets_open_close(conditions):
        if open_ is None or order < open_at:
            open_, open_at = price, order
        if close is None or order >= close_at:
            close, close_at = price, order
    if not conditions or sets_high_low(conditions):
        if high is None or price > high:
            high = price
        if low is None or price < low:
            low = price
    if not conditions or counts_in_volume(conditions):
        volume += tick.size
        notional += round(price * PRICE_UNITS) * tick.size
        transactions += 1
    return Partial(start, end, open_, open_at, close, close_at, high, low, volume, notional,
                   transactions, emitted)  # fmt: skip


@dataclass
class Folded:
    """What one tick produced: bars to emit (closed or corrected) and timeframes it missed."""

    bars: list[Bar] = field(default_factory=list)
    dropped_for: list[str] = field(default_factory=list)


def state_key(symbol: str, timeframe: Timeframe, start: int) -> str:
    return f"{symbol}|{timeframe.name}|{start}"


class BarBuilder:
    """Builds the bars of every timeframe from the ticks of one stream (e.g. one partition).

    ``state`` maps :func:`state_key` to :class:`Partial`, plus the watermark under
    ``watermark_key``: all a restarted builder needs to go on where this one stopped.
    """

    def __init__(
        self,
        timeframes: Iterable[Timeframe],
        *,
        state: MutableMapping[str, object],
        grace_ms: int,
        late_limit_ms: int,
        watermark_key: str = "watermark",
    ) -> None:
        self._timeframes = {tf.name: tf for tf in timeframes}
        self._state = state
        self._grace_ms = grace_ms
        self._late_limit_ms = late_limit_ms
        self._watermark_key = watermark_key
        self._to_close: list[tuple[int, str]] = []  # (window end, key) of unemitted windows
        self._to_purge: list[tuple[int, str]] = []  # (window end + late limit, key)
        for key, value in state.items():
            if isinstance(value, Partial):
                self._track(key, value)

    def _track(self, key: str, partial: Partial) -> None:
        if not partial.emitted:
            heapq.heappush(self._to_close, (partial.end, key))
        heapq.heappush(self._to_purge, (partial.end + self._late_limit_ms, key))

    @property
    def watermark(self) -> int:
        """Latest tick time seen minus the grace; nothing is closed before the first tick."""
        value = self._state.get(self._watermark_key)
        return value if isinstance(value, int) else -(2**62)

    def add(self, tick: Tick) -> Folded:
        """Fold ``tick`` into each timeframe's window; return what is to be emitted now."""
        out = Folded()
        watermark = self.watermark
        for timeframe in self._timeframes.values():
            start, end = window_of(tick.ts, timeframe)
            if end + self._late_limit_ms <= watermark:
                out.dropped_for.append(timeframe.name)
                continue
            key = state_key(tick.symbol, timeframe, start)
            current = self._state.get(key)
            new_window = not isinstance(current, Partial)
            if not isinstance(current, Partial):
                current = Partial(start=start, end=end)
            folded = fold_tick(current, tick)
            if end <= watermark:  # closed already: a correction, emitted at once
                bar = folded.bar(tick.symbol, timeframe)
                if bar is not None:
                    out.bars.append(bar)
                folded = folded._replace(emitted=True)
            if new_window:
                self._track(key, folded)
            self._state[key] = folded
        if tick.ts - self._grace_ms > watermark:
            out.bars.extend(self.advance(tick.ts - self._grace_ms))
        return out

    def advance(self, watermark: int) -> list[Bar]:
        """Move the watermark to ``watermark`` if that is later (e.g. an idle stream's clock)
        and return the bars of the windows it closes; forget those past the late limit."""
        if watermark > self.watermark:
            self._state[self._watermark_key] = watermark
        closed: list[Bar] = []
        while self._to_close and self._to_close[0][0] <= watermark:
            _, key = heapq.heappop(self._to_close)
            partial = self._state.get(key)
            if not isinstance(partial, Partial) or partial.emitted:
                continue
            symbol, tf_name, _ = key.split("|")
            bar = partial.bar(symbol, self._timeframes[tf_name])
            if bar is not None:
                closed.append(bar)
            self._state[key] = partial._replace(emitted=True)
        while self._to_purge and self._to_purge[0][0] <= watermark:
            _, key = heapq.heappop(self._to_purge)
            self._state.pop(key, None)
        return closed
