"""What a live client is owed: bounded however slowly it reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from chronox_stream.contracts.envelope import envelope
from chronox_stream.domain.bars import Bar
from chronox_stream.read.live import MAX_PENDING_BARS, Pending, event_bar, sse

BAR = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 10, 14, 30, tzinfo=UTC), open=10.0,
          high=11.0, low=9.5, close=10.5, volume=300.0)  # fmt: skip


async def test_a_slow_client_keeps_the_newest_live_bar_and_a_bounded_backlog() -> None:
    pending = Pending()
    for i in range(MAX_PENDING_BARS + 50):
        pending.offer("bar", str(i).encode())
        pending.offer("live", f"live {i}".encode())
    events = await pending.take(1.0)
    assert len(events) == MAX_PENDING_BARS + 1
    newest = MAX_PENDING_BARS + 49
    assert events[0] == ("bar", b"50") and events[-2] == ("bar", str(newest).encode())
    assert events[-1] == ("live", f"live {newest}".encode())
    assert await pending.take(0.05) == []


async def test_take_waits_for_an_offer() -> None:
    pending = Pending()
    waiting = asyncio.create_task(pending.take(5.0))
    await asyncio.sleep(0.01)
    pending.offer("live", b"x")
    assert await waiting == [("live", b"x")]


def test_only_valid_envelopes_of_the_stream_become_events() -> None:
    raw = envelope(BAR, "stream")
    doc = event_bar(raw, "AAPL", "1m")
    assert doc == {"ts": "2024-01-10T14:30:00Z", "time": 1704897000, "open": 10.0, "high": 11.0,
                   "low": 9.5, "close": 10.5, "volume": 300.0, "source": "stream"}  # fmt: skip
    assert event_bar(raw, "MSFT", "1m") is None and event_bar(raw, "AAPL", "5m") is None
    assert event_bar(b"<script>alert(1)</script>", "AAPL", "1m") is None
    assert sse("live", orjson.dumps(doc)).count(b"\n") == 3
