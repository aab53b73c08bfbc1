"""Ticks to bars in event time (pure): windows, Polygon's fold rules, our own watermark.

Folding trades into a bar follows the SIP rules of :mod:`chronox_stream.domain.conditions`:

- open/close: the first/last trade in SIP order (time, then sequence) that may set them;
- high/low: over the trades that may set them;
- volume and transactions: over the trades that count in volume;
- vwap: ``round(sum(price * size) / volume, 4)`` over those trades (the close when the
  volume is 0), summed exactly in units of 1/10,000 of a dollar so that the order in
  which ticks arrive cannot change it;
- a window with no trade that may set open/close has no bar.

Windows: minute multiples and hours are aligned to the epoch; a day runs from
midnight to midnight in New York (extended hours included), as Polygon's day bars.
As Polygon's, minute multiples and hours roll up the window's minute bars (the
trades of a minute that has no bar count nowhere in them), while a day folds
every trade of the day.

Event time: the watermark is the latest tick time seen minus ``grace_ms``. A
window closes, and its bar is emitted, once the watermark reaches its end; a
tick for a window that is still open is folded in whatever its arrival order.
A tick for a closed window younger than ``late_limit_ms`` (measured from the
window's end to the watermark) is folded in and its bar emitted again, corrected;
an older one is dropped and counted. State is purged once a window is past the
late limit. Faust's own window-close callback runs on the wall clock, which
means nothing on replayed data; this one runs on the data.

Completeness: a feed marker (:class:`~chronox_stream.contracts.ticks.FeedMarker`) says from
when a symbol's feed holds every trade. A window that starts before that instant,
rounded up to the next window of its timeframe (:func:`first_complete_window`), is
incomplete: its bar is never emitted from ticks, neither when it closes nor when a
late tick corrects it; the window is handed out for a refill from REST instead
(:meth:`BarBuilder.take_refills`). Only the latest (greatest) marker counts, so a
reconnect makes every earlier window incomplete too: a late trade for one of them
may have been reported while the feed was down. A symbol without a marker is
complete.

The state lives in a ``MutableMapping`` (a :class:`~chronox_stream.domain.tick_state.TrackedState`
in workers, a dict in tests); an in-memory index of open windows is rebuilt from it on
start. A minute's partial and its trades are folded into in place, and set again in the
state (which marks them changed) once per :meth:`BarBuilder.sync`, not per tick.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from chronox_stream.contracts.ticks import Tick
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.conditions import counts_in_volume, sets_high_low, sets_open_close
from chronox_stream.domain.timeframes import TIMEFRAMES, Timeframe
from chronox_stream.domain.windows import window_end, window_start

ONE_MINUTE = TIMEFRAMES["1m"]
PRICE_UNITS = 10_000  # prices are summed in 1/10,000 of a dollar: sub-penny prices stay exact
HOUR_MS = 3_600_000


@lru_cache(maxsize=4096)
def _day_window(hour: int) -> tuple[int, int]:
    """The New York day containing the hour ``hour`` (hours since the epoch), in epoch ms."""
    day = TIMEFRAMES["1d"]
    start = window_start(datetime.fromtimestamp(hour * 3600, tz=UTC), day)
    return int(start.timestamp() * 1000), int(window_end(start, day).timestamp() * 1000)


@lru_cache(maxsize=4096)
def _utc(ms: int) -> datetime:
    """The UTC moment of epoch ``ms``, remembered: the bars of every symbol share a start."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def window_of(ts: int, timeframe: Timeframe) -> tuple[int, int]:
    """``[start, end)`` in epoch ms of the ``timeframe`` window containing ``ts`` (epoch ms)."""
    if timeframe.timespan == "day":
        return _day_window(ts // HOUR_MS)
    width = timeframe.seconds * 1000
    start = ts - ts % width
    return start, start + width


def first_complete_window(complete_from: int, timeframe: Timeframe) -> int:
    """Start (epoch ms) of the first ``timeframe`` window wholly inside a feed complete from
    ``complete_from``: the window starting at that instant, else the next one."""
    start, end = window_of(complete_from, timeframe)
    return start if start == complete_from else end


class Window(NamedTuple):
    """One ``timeframe`` window ``[start, end)`` (epoch ms) of ``symbol``."""

    symbol: str
    timeframe: str
    start: int
    end: int


@dataclass(slots=True)
class Partial:
    """What one window has folded so far; prices are ``None`` until a trade may set them.

    Mutable: a minute's partial is folded into in place (:func:`fold_tick`), one object
    per minute, not a new one per tick.
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
    #: Source offset of the last tick folded in (-1: none given): a replayed tick at or
    #: before it is already in, which keeps a restart from counting a tick twice.
    position: int = -1

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
            ts=_utc(self.start),
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=float(self.volume),
            vwap=vwap,
            transactions=self.transactions,
        )


@lru_cache(maxsize=4096)
def updates(conditions: tuple[int, ...]) -> tuple[bool, bool, bool]:
    """Whether a trade with ``conditions`` may set open/close, high/low, and counts in volume;
    remembered, as a feed repeats a few dozen combinations."""
    return sets_open_close(conditions), sets_high_low(conditions), counts_in_volume(conditions)


def fold_tick(partial: Partial, tick: Tick, position: int | None = None) -> Partial:
    """Fold ``tick`` into ``partial`` in place, whatever the order ticks arrive in, and
    return it; ``position``, if given, becomes the partial's source position."""
    open_close, high_low, in_volume = updates(tick.conditions)
    price = tick.price
    if open_close:
        sequence = tick.sequence
        order = (tick.ts, -1 if sequence is None else sequence)  # ``tick.order``, inlined
        if partial.open is None or order < partial.open_at:
            partial.open, partial.open_at = price, order
        if partial.close is None or order >= partial.close_at:
            partial.close, partial.close_at = price, order
    if high_low:
        high = partial.high
        if high is None or price > high:
            partial.high = price
        low = partial.low
        if low is None or price < low:
            partial.low = price
    if in_volume:
        size = tick.size
        partial.volume += size
        partial.notional += round(price * PRICE_UNITS) * size
        partial.transactions += 1
    if position is not None:
        partial.position = position
    return partial


def merge_partials(parts: Iterable[Partial], start: int, end: int) -> Partial:
    """One window ``[start, end)`` from the partials of the minutes inside it: the same
    bar as folding all their trades, since every partial knows where its open and close
    stand in SIP order."""
    merged = Partial(start=start, end=end)
    for part in parts:
        open_, open_at, close, close_at = merged.open, merged.open_at, merged.close, merged.close_at
        if part.open is not None and (open_ is None or part.open_at < open_at):
            open_, open_at = part.open, part.open_at
        if part.close is not None and (close is None or part.close_at >= close_at):
            close, close_at = part.close, part.close_at
        high, low = merged.high, merged.low
        if part.high is not None and (high is None or part.high > high):
            high = part.high
        if part.low is not None and (low is None or part.low < low):
            low = part.low
        merged = Partial(start, end, open_, open_at, close, close_at, high, low,
                         merged.volume + part.volume, merged.notional + part.notional,
                         merged.transactions + part.transactions)  # fmt: skip
    return merged


class Folded(NamedTuple):
    """What one tick produced: bars to emit (closed or corrected) and timeframes it missed."""

    bars: tuple[Bar, ...] = ()
    dropped_for: tuple[str, ...] = ()


NOTHING = Folded()  # what most ticks produce: made once, not per tick


def minute_key(symbol: str, start: int) -> str:
    return f"m|{symbol}|{start}"


def emitted_key(symbol: str, timeframe: str, start: int) -> str:
    return f"e|{symbol}|{timeframe}|{start}"


def complete_key(symbol: str) -> str:
    return f"c|{symbol}"


def trade_key(exchange: int | None, trade_id: str) -> int:
    """8 bytes (a signed 64-bit integer) naming one trade of a symbol: its exchange and id.

    Polygon's ids are decimal strings; up to 16 ASCII digits without a leading zero and
    with an exchange in 0-255 they are packed exactly (``id << 8 | exchange``,
    non-negative), in a fraction of the time of a digest. Any other id is a 56-bit
    BLAKE2b digest of both, made negative so the two kinds never meet. Stable across
    processes (the keys are kept on the changelog), unlike Python's ``hash`` of a string.
    """
    if (
        exchange is not None
        and 0 <= exchange <= 255
        and len(trade_id) <= 16
        and trade_id.isascii()
        and trade_id.isdigit()
        and (trade_id[0] != "0" or trade_id == "0")
    ):
        return int(trade_id) << 8 | exchange
    digest = hashlib.blake2b(f"{exchange}|{trade_id}".encode(), digest_size=7).digest()
    return -1 - int.from_bytes(digest, "big")


class BarBuilder:
    """Builds the bars of every timeframe from the ticks of one stream (e.g. one partition).

    Each tick is folded once, into its minute; a wider window's bar is the merge of its
    minutes (:func:`merge_partials`), made when the window closes or is corrected. The
    ``state`` holds the minute partials (:func:`minute_key`), a mark per emitted window
    (:func:`emitted_key`), the trades of each minute (``t|SYMBOL|minute``) and the
    watermark under ``watermark_key``: all a restarted builder needs to go on where this
    one stopped. A minute is kept until the widest window containing it is past the late
    limit.

    The latest feed marker of a symbol is kept under :func:`complete_key`; windows
    before it are never emitted (see the module docstring) but collected for a refill:
    a window when it closes, and again for every tick that reaches it after it closed.

    A trade that carries an id is counted once: a minute keeps the :func:`trade_key` of
    each trade folded into it until the minute itself is past the late limit, and a tick
    repeating one of them (the same trade from a second producer) is skipped. A repeat
    later than that is judged as any late tick: dropped for the minute, still counted
    by a wider window that takes it. A trade without an id cannot be told from another.

    A minute's partial and its trades are folded into in place and the watermark kept in
    memory: :meth:`sync` sets them in the state again (a tracking state then records the
    change) once, however many ticks they took since the last sync. A caller that drains
    a tracking state's changes calls :meth:`sync` first. Incomplete windows are collected
    in ``refills`` when given (a set shared by the builders of a stream), else in the
    builder's own, which :meth:`take_refills` empties.
    """

    def __init__(
        self,
        timeframes: Iterable[Timeframe],
        *,
        state: MutableMapping[str, object],
        grace_ms: int,
        late_limit_ms: int,
        watermark_key: str = "watermark",
        refills: set[Window] | None = None,
    ) -> None:
        self._timeframes = sorted(timeframes, key=lambda tf: tf.seconds)
        self._by_name = {tf.name: tf for tf in self._timeframes}
        self._state = state
        self._grace_ms = grace_ms
        self._late_limit_ms = late_limit_ms
        self._watermark_key = watermark_key
        stored = state.get(watermark_key)
        self._watermark = stored if isinstance(stored, int) else -(2**62)  # kept in ``state`` too
        self._watermark_moved = False  # by a tick since the last sync
        self._known: set[tuple[str, str, int]] = set()  # windows with a minute or a mark
        self._to_close: list[tuple[int, str, str, int]] = []  # (end, tf, symbol, start)
        self._to_forget: list[tuple[int, str]] = []  # (when, state key), minutes and marks
        self._refills: set[Window] = set() if refills is None else refills  # to fetch from REST
        self._minutes: dict[str, Partial] = {}  # folded into since the last sync, by key
        self._trades: dict[str, set[int]] = {}  # the trades of those minutes, by key
        #: Whether a feed marker is kept: without one no window is :meth:`incomplete` (an
        #: attribute, not a property: read once per tick).
        self.marked = False
        for key in list(state):
            kind, _, rest = key.partition("|")
            if kind == "c":
                self.marked = True
            elif kind == "m":
                symbol, _, start = rest.rpartition("|")
                self._track_minute(symbol, int(start))
            elif kind == "e":
                symbol, tf_name, start = rest.split("|")
                self._track_mark(symbol, self._by_name[tf_name], int(start))
            elif kind == "t":
                self._track_trades(key, int(rest.rpartition("|")[2]))

    @property
    def watermark(self) -> int:
        """Latest tick time seen minus the grace; nothing is closed before the first tick."""
        return self._watermark

    def complete_from(self, symbol: str, at: int) -> None:
        """Take a feed marker: ``symbol``'s feed holds every trade from ``at`` (epoch ms) on.
        An earlier marker than the one kept changes nothing."""
        key = complete_key(symbol)
        known = self._state.get(key)
        if not isinstance(known, int) or at > known:
            self._state[key] = at
            self.marked = True

    def incomplete(self, symbol: str, timeframe: Timeframe, start: int) -> bool:
        """Whether the window of ``timeframe`` starting at ``start`` began before ``symbol``'s
        feed was complete (its latest marker rounded up to the timeframe's next window)."""
        marker = self._state.get(f"c|{symbol}")  # :func:`complete_key`, inlined: once per tick
        return type(marker) is int and start < first_complete_window(marker, timeframe)

    def take_refills(self) -> list[Window]:
        """The incomplete windows met since the last call, to be fetched from REST."""
        refills = sorted(self._refills)
        self._refills.clear()  # in place: the set may be shared
        return refills

    def _track_minute(self, symbol: str, minute: int) -> None:
        widest_end = minute
        for timeframe in self._timeframes:
            start, end = window_of(minute, timeframe)
            widest_end = max(widest_end, end)
            window = (symbol, timeframe.name, start)
            if window in self._known or end + self._late_limit_ms <= self.watermark:
                continue  # tracked, or closed and forgotten long ago (a restart)
            self._known.add(window)
            if emitted_key(symbol, timeframe.name, start) not in self._state:
                heapq.heappush(self._to_close, (end, timeframe.name, symbol, start))
        heapq.heappush(self._to_forget, (widest_end + self._late_limit_ms,
                                         minute_key(symbol, minute)))  # fmt: skip

    def _track_trades(self, key: str, minute: int) -> None:
        heapq.heappush(self._to_forget, (minute + 60_000 + self._late_limit_ms, key))

    def _track_mark(self, symbol: str, timeframe: Timeframe, start: int) -> None:
        _, end = window_of(start, timeframe)
        self._known.add((symbol, timeframe.name, start))
        heapq.heappush(self._to_forget, (end + self._late_limit_ms,
                                         emitted_key(symbol, timeframe.name, start)))  # fmt: skip

    def _bar(self, symbol: str, timeframe: Timeframe, start: int, end: int) -> Bar | None:
        if timeframe.seconds == 60:
            minute = self._state.get(minute_key(symbol, start))
            return minute.bar(symbol, timeframe) if isinstance(minute, Partial) else None
        minutes = (self._state.get(minute_key(symbol, m)) for m in range(start, end, 60_000))
        parts = [m for m in minutes if isinstance(m, Partial)]
        if timeframe.timespan != "day":  # a roll-up of minute bars: no bar, nothing added
            parts = [m for m in parts if m.open is not None]
        return merge_partials(parts, start, end).bar(symbol, timeframe)

    def _emit(self, symbol: str, timeframe: Timeframe, start: int, end: int) -> Bar | None:
        """The window's bar (if it has one), marked as emitted; ``None`` for an incomplete
        window, which is collected for a refill instead."""
        key = emitted_key(symbol, timeframe.name, start)
        if key not in self._state:
            self._state[key] = True
            self._track_mark(symbol, timeframe, start)
        if self.incomplete(symbol, timeframe, start):
            self._refills.add(Window(symbol, timeframe.name, start, end))
            return None
        return self._bar(symbol, timeframe, start, end)

    def _minute(self, key: str, symbol: str, minute: int) -> Partial:
        """The partial of ``minute`` (``key``: its :func:`minute_key`), made if new, kept at
        hand to fold into until the next :meth:`sync`."""
        current = self._state.get(key)
        if not isinstance(current, Partial):
            current = Partial(start=minute, end=minute + 60_000)
            self._state[key] = current
            self._track_minute(symbol, minute)
        self._minutes[key] = current
        return current

    def _trades_of(self, key: str, minute: int) -> set[int]:
        """The trades of ``minute`` (``key``: ``t|SYMBOL|minute``), an empty set if none yet,
        kept at hand until the next :meth:`sync`."""
        seen = self._state.get(key)
        if not isinstance(seen, set):
            seen = set()
            self._state[key] = seen
            self._track_trades(key, minute)
        self._trades[key] = seen
        return seen

    def sync(self) -> None:
        """Set the minutes and trades folded into since the last sync, and the watermark a
        tick moved, in the state again: a tracking state records them as changed."""
        state = self._state
        for key, partial in self._minutes.items():
            state[key] = partial
        for key, seen in self._trades.items():
            state[key] = seen
        self._minutes.clear()
        self._trades.clear()
        if self._watermark_moved:
            state[self._watermark_key] = self._watermark
            self._watermark_moved = False

    def _late(
        self, tick: Tick, closed: list[tuple[Timeframe, int, int]], dropped_for: list[str]
    ) -> int:
        """Sort a late tick's windows: closed but correctable (into ``closed``), past the late
        limit (into ``dropped_for``, or collected for a refill if incomplete: REST has the
        trade); return how many are past the late limit."""
        past = 0
        for timeframe in self._timeframes:
            start, end = window_of(tick.ts, timeframe)
            if end + self._late_limit_ms <= self._watermark:
                past += 1
                if self.incomplete(tick.symbol, timeframe, start):
                    self._refills.add(Window(tick.symbol, timeframe.name, start, end))
                else:
                    dropped_for.append(timeframe.name)
            elif end <= self._watermark:
                closed.append((timeframe, start, end))
        return past

    def add(self, tick: Tick, position: int | None = None) -> Folded:
        """Fold ``tick`` into its minute; return what is to be emitted now.

        ``position`` is the tick's offset in its source partition, if it has one: a tick
        at or before the position its minute records was folded in already and is skipped.
        Runs once per trade, so the common case (a tick of a minute still open) takes the
        shortest path.
        """
        ts = tick.ts
        symbol = tick.symbol
        watermark = self._watermark
        minute = ts - ts % 60_000
        closed: list[tuple[Timeframe, int, int]] | tuple[()] = ()  # lists only for a late tick
        dropped_for: list[str] | tuple[()] = ()
        if minute + 60_000 <= watermark:  # its minute has closed: maybe other windows too
            closed, dropped_for = [], []
            if self._late(tick, closed, dropped_for) == len(self._timeframes):
                return Folded((), tuple(dropped_for))
        key = f"m|{symbol}|{minute}"  # :func:`minute_key`, inlined
        current = self._minutes.get(key)
        if current is None:
            current = self._minute(key, symbol, minute)
        if position is not None and position <= current.position:
            return NOTHING  # folded in already (a replay)
        trade_id = tick.trade_id
        if trade_id is not None:
            seen_key = "t" + key[1:]  # t|SYMBOL|minute, in a third of the time of a format
            seen = self._trades.get(seen_key)
            if seen is None:
                seen = self._trades_of(seen_key, minute)
            trade = trade_key(tick.exchange, trade_id)
            if trade in seen:
                return NOTHING  # a trade the minute holds (a repeat)
            seen.add(trade)
        fold_tick(current, tick, position)
        bars: list[Bar] = []
        for timeframe, start, end in closed:  # closed already: a correction, at once
            bar = self._emit(symbol, timeframe, start, end)
            if bar is not None:
                bars.append(bar)
        if ts - self._grace_ms > watermark:
            watermark = self._watermark = ts - self._grace_ms
            self._watermark_moved = True
            if (self._to_close and self._to_close[0][0] <= watermark) or (
                self._to_forget and self._to_forget[0][0] <= watermark
            ):
                bars.extend(self._close_and_forget(watermark))
        if bars or dropped_for:
            return Folded(tuple(bars), tuple(dropped_for))
        return NOTHING

    def in_progress(self, symbol: str, ts: int) -> list[Bar]:
        """The bars, as they stand, of ``symbol``'s windows containing ``ts`` (day windows
        excepted: merging a day's minutes on every call would cost more than it shows;
        incomplete windows too: they would show a part of their window as the whole)."""
        bars = []
        for timeframe in self._timeframes:
            if timeframe.timespan == "day":
                continue
            start, end = window_of(ts, timeframe)
            if self.incomplete(symbol, timeframe, start):
                continue
            bar = self._bar(symbol, timeframe, start, end)
            if bar is not None:
                bars.append(bar)
        return bars

    def advance(self, watermark: int) -> list[Bar]:
        """Move the watermark to ``watermark`` if that is later (e.g. an idle stream's clock)
        and return the bars of the windows it closes; forget what is past the late limit."""
        if watermark > self._watermark:
            self._watermark = watermark
            self._state[self._watermark_key] = watermark
        return self._close_and_forget(self._watermark)

    def _close_and_forget(self, watermark: int) -> list[Bar]:
        closed: list[Bar] = []
        while self._to_close and self._to_close[0][0] <= watermark:
            end, tf_name, symbol, start = heapq.heappop(self._to_close)
            if emitted_key(symbol, tf_name, start) in self._state:
                continue
            bar = self._emit(symbol, self._by_name[tf_name], start, end)
            if bar is not None:
                closed.append(bar)
        while self._to_forget and self._to_forget[0][0] <= watermark:
            _, key = heapq.heappop(self._to_forget)
            self._state.pop(key, None)
            self._minutes.pop(key, None)  # not to be set again by the next sync
            self._trades.pop(key, None)
            if key.startswith("e|"):
                mark_symbol, mark_tf, mark_start = key[2:].split("|")
                self._known.discard((mark_symbol, mark_tf, int(mark_start)))
        return closed
