"""The WebSocket feed as a function of time (pure): what is sent in ``(after, upto]``.

A trade is sent (``T``) when sim-now passes its report time: its SIP time,
or, with the late-trades knob on, its late report time. Aggregates close
with their window: ``A`` at the end of each second and ``AM`` at the end of
each minute, built from the window's trades reported by then (no event for a
window without an eligible trade). At the end of every minute, each earlier
minute that received late trades during it is re-sent as a corrected ``AM``
with everything reported so far; after 15 minutes nothing changes, so the
last ``AM`` of a window equals the REST bar.

Day fields: ``av`` and ``a`` (day volume and VWAP) cover the day's trades
reported by the event's time; ``op`` (official open: the first open/close
eligible trade of the regular session) appears once that trade is reported;
``z`` is the window's average trade size, ``v // n``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Any

from chronox_stream.domain.conditions import counts_in_volume, sets_open_close
from chronox_stream.sim.aggregate import Agg, fold
from chronox_stream.sim.market import LATE_WINDOW_NS, Market, Trade
from chronox_stream.sim.sessions import NS_PER_MIN, NS_PER_S, ny_date, trading_day

CHANNELS = frozenset({"T", "A", "AM"})
_RANK = {"T": 0, "A": 1, "AM": 2}


@dataclass(frozen=True, slots=True, order=True)
class Timed:
    """An event and when it is due; sorts by time, then T < A < AM, then symbol."""

    at_ns: int
    rank: int
    symbol: str
    start_ns: int
    event: dict[str, Any] = field(compare=False)


@dataclass(frozen=True, slots=True)
class DayTape:
    """One symbol-day seen by the feed: trades by SIP time and by report time, day totals."""

    by_sip: tuple[Trade, ...]
    sip_keys: tuple[int, ...]
    by_report: tuple[Trade, ...]
    report_keys: tuple[int, ...]
    cum_volume: tuple[int, ...]
    cum_notional: tuple[int, ...]
    official_open: Trade | None
    late: bool

    def reported_ns(self, trade: Trade) -> int:
        return trade.report_ns if self.late else trade.sip_ns

    def sip_between(self, start_ns: int, end_ns: int) -> tuple[Trade, ...]:
        return self.by_sip[
            bisect_left(self.sip_keys, start_ns) : bisect_left(self.sip_keys, end_ns)
        ]

    def reported_between(self, after_ns: int, upto_ns: int) -> tuple[Trade, ...]:
        lo = bisect_right(self.report_keys, after_ns)
        return self.by_report[lo : bisect_right(self.report_keys, upto_ns)]

    def day_fields(self, at_ns: int) -> dict[str, Any]:
        """``av``, ``a`` and (once known) ``op`` as of ``at_ns``."""
        i = bisect_right(self.report_keys, at_ns)
        volume, notional = self.cum_volume[i], self.cum_notional[i]
        found: dict[str, Any] = {"av": volume}
        if volume:
            found["a"] = round(notional / (100 * volume), 4)
        opener = self.official_open
        if opener is not None and self.reported_ns(opener) <= at_ns:
            found["op"] = opener.price
        return found


@lru_cache(maxsize=64)
def day_tape(market: Market, symbol: str, day: date, late: bool) -> DayTape:
    by_sip = market.day(symbol, day)
    by_report = tuple(sorted(by_sip, key=lambda t: (t.report_ns if late else t.sip_ns, t.sip_ns)))
    counted = [t if counts_in_volume(t.conditions) else None for t in by_report]
    session = trading_day(day)
    regular = [
        t for t in by_sip
        if session is not None and session.phase(t.sip_ns) == "regular"
        and sets_open_close(t.conditions)
    ]  # fmt: skip
    return DayTape(
        by_sip=by_sip,
        sip_keys=tuple(t.sip_ns for t in by_sip),
        by_report=by_report,
        report_keys=tuple(t.report_ns if late else t.sip_ns for t in by_report),
        cum_volume=tuple(accumulate((t.size if t else 0 for t in counted), initial=0)),
        cum_notional=tuple(accumulate((t.cents * t.size if t else 0 for t in counted), initial=0)),
        official_open=regular[0] if regular else None,
        late=late,
    )


def trade_event(trade: Trade) -> dict[str, Any]:
    event: dict[str, Any] = {
        "ev": "T",
        "sym": trade.symbol,
        "x": trade.exchange,
        "i": trade.trade_id,
        "z": trade.tape,
        "p": trade.price,
        "s": trade.size,
        "t": trade.sip_ns // 1_000_000,
        "q": trade.sequence,
    }
    if trade.conditions:
        event["c"] = list(trade.conditions)
    if trade.trf_id is not None and trade.trf_ns is not None:
        event["trfi"], event["trft"] = trade.trf_id, trade.trf_ns // 1_000_000
    return event


def aggregate_event(kind: str, symbol: str, bar: Agg, day_fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "ev": kind,
        "sym": symbol,
        "v": bar.volume,
        **day_fields,
        "vw": bar.vwap,
        "o": bar.open,
        "c": bar.close,
        "h": bar.high,
        "l": bar.low,
        "z": bar.volume // bar.transactions if bar.transactions else 0,
        "s": bar.start_ms,
        "e": bar.end_ms,
    }


def _window_event(
    tape: DayTape, kind: str, symbol: str, start_ns: int, width_ns: int, at_ns: int
) -> Timed | None:
    trades = [
        t for t in tape.sip_between(start_ns, start_ns + width_ns) if tape.reported_ns(t) <= at_ns
    ]
    bar = fold(trades, start_ns, start_ns + width_ns)
    if bar is None:
        return None
    event = aggregate_event(kind, symbol, bar, tape.day_fields(at_ns))
    return Timed(at_ns, _RANK[kind], symbol, start_ns, event)


def _minute_events(tape: DayTape, symbol: str, after_ns: int, upto_ns: int) -> Iterable[Timed]:
    """``AM`` for each minute closing in ``(after, upto]``, then corrections of earlier minutes."""
    first_close = after_ns - after_ns % NS_PER_MIN + NS_PER_MIN
    for close in range(first_close, upto_ns + 1, NS_PER_MIN):
        minute = close - NS_PER_MIN
        fresh = _window_event(tape, "AM", symbol, minute, NS_PER_MIN, close)
        if fresh is not None:
            yield fresh
        corrected = sorted(
            {t.sip_ns - t.sip_ns % NS_PER_MIN for t in tape.reported_between(minute, close)}
            - {minute}
        )
        for earlier in corrected:
            event = _window_event(tape, "AM", symbol, earlier, NS_PER_MIN, close)
            if event is not None:
                yield event


def _second_events(tape: DayTape, symbol: str, after_ns: int, upto_ns: int) -> Iterable[Timed]:
    """``A`` for each second with trades that closes in ``(after, upto]``."""
    seconds = sorted(
        {t.sip_ns - t.sip_ns % NS_PER_S for t in tape.sip_between(after_ns - NS_PER_S, upto_ns)}
    )
    for second in seconds:
        if after_ns < second + NS_PER_S <= upto_ns:
            event = _window_event(tape, "A", symbol, second, NS_PER_S, second + NS_PER_S)
            if event is not None:
                yield event


def feed_events(
    market: Market, symbol: str, channels: frozenset[str], after_ns: int, upto_ns: int, late: bool
) -> list[Timed]:
    """Events of ``symbol`` on ``channels`` due in ``(after_ns, upto_ns]``, in due order."""
    if upto_ns <= after_ns or not channels:
        return []
    events: list[Timed] = []
    first = ny_date(after_ns - LATE_WINDOW_NS - NS_PER_MIN)
    for i in range((ny_date(upto_ns) - first).days + 1):
        day = first + timedelta(days=i)
        if trading_day(day) is None:
            continue
        tape = day_tape(market, symbol, day, late)
        if "T" in channels:
            events.extend(
                Timed(tape.reported_ns(t), 0, symbol, t.sip_ns, trade_event(t))
                for t in tape.reported_between(after_ns, upto_ns)
            )
        if "A" in channels:
            events.extend(_second_events(tape, symbol, after_ns, upto_ns))
        if "AM" in channels:
            events.extend(_minute_events(tape, symbol, after_ns, upto_ns))
    events.sort()
    return events
