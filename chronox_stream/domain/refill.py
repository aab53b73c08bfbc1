"""Refilling what a WebSocket outage missed (pure): which windows to fetch, and when.

The server does not replay trades sent while a client was away. In event time
an outage runs from the latest trade received before the connection dropped to
the feed marker after it came back (a new subscription is an outage too). For
each tick timeframe, the windows overlapping that span are fetched again from
the REST API as an api backfill, whose bars outrank the stream's incomplete
ones; so are the windows up to the late limit before it, whose late-reported
trades the server sent while the client was away. A window is asked for only
once the stream's event time is past its end: before that, the REST bar of the
window would be incomplete too.

The tick aggregator asks for refills too: the windows it must not emit from
ticks, because they began before the symbol's feed was complete (a new
subscription, a reconnect, a new leader: see :mod:`chronox_stream.domain.tick_bars`),
once they close and again whenever a late trade reaches one of them
(:func:`window_refills`).

The leader plans an outage's refills with each feed marker it sends (see
:mod:`agents.stream`): the span runs from when the symbols were last known
complete to the marker. So that no refill has to outlive the client that
planned it, each timeframe's windows come in two parts: those closed before
the span's end, due at once, and the window it falls in, due at its end. A
refill still pending is thus always for the window of the stream's latest
trade, which a successor (a new leader, a restarted worker) plans again from
the latest trade on the raw ticks topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from chronox_stream.domain.tick_bars import Window, window_of
from chronox_stream.domain.timeframes import TIMEFRAMES


@dataclass(frozen=True, slots=True)
class Outage:
    """Event time (epoch ms) when a feed was last known complete (e.g. the last trade before a
    disconnect) and from when it is again (the feed marker after the reconnect)."""

    last_before_ms: int
    first_after_ms: int


@dataclass(frozen=True, slots=True)
class Refill:
    """The ``timeframe`` windows in ``[start_ms, end_ms)`` to fetch for ``symbols``."""

    timeframe: str
    start_ms: int
    end_ms: int
    symbols: tuple[str, ...]

    def due(self, event_time_ms: int) -> bool:
        return event_time_ms >= self.end_ms

    def request(self) -> bytes:
        """The control message of this refill: an api-only backfill request that fetches
        its windows even if an earlier run covered them (a late trade changed them since)."""
        return orjson.dumps(
            {
                "request_id": f"refill-{uuid.uuid4().hex[:16]}",
                "symbols": list(self.symbols),
                "timeframe": self.timeframe,
                "strategy": "api",
                "refetch": True,
                "start": _iso(self.start_ms),
                "end": _iso(self.end_ms),
            }
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def refills(
    outage: Outage, timeframes: Iterable[str], symbols: Iterable[str], late_limit_ms: int = 0
) -> list[Refill]:
    """Per timeframe, the windows the outage touched, and those ending up to
    ``late_limit_ms`` before it: the closed ones, then the open one. An outage of no
    time (a subscription) still has its window refilled: the feed joined it halfway."""
    wanted = tuple(sorted(set(symbols)))
    if not wanted or outage.first_after_ms < outage.last_before_ms:
        return []
    out = []
    for name in timeframes:
        start, _ = window_of(outage.last_before_ms - late_limit_ms, TIMEFRAMES[name])
        current, end = window_of(outage.first_after_ms, TIMEFRAMES[name])
        if start < current:
            out.append(Refill(name, start, current, wanted))
        out.append(Refill(name, current, end, wanted))
    return out


def window_refills(windows: Iterable[Window]) -> list[Refill]:
    """Few requests for many windows: per symbol and timeframe one span from its first
    window's start to its last one's end, and one request per timeframe and span."""
    spans: dict[tuple[str, str], tuple[int, int]] = {}
    for window in windows:
        key = (window.symbol, window.timeframe)
        start, end = spans.get(key, (window.start, window.end))
        spans[key] = (min(start, window.start), max(end, window.end))
    grouped: dict[tuple[str, int, int], list[str]] = {}
    for (symbol, timeframe), (start, end) in spans.items():
        grouped.setdefault((timeframe, start, end), []).append(symbol)
    return [Refill(timeframe, start, end, tuple(sorted(symbols)))
            for (timeframe, start, end), symbols in sorted(grouped.items())]  # fmt: skip
