"""Server-sent events of one symbol's bars: the in-progress bar and the closed ones.

The tick aggregator publishes in-progress bars on ``live:{SYMBOL}:{tf}`` and the Redis
sink every stored bar on ``bars:{SYMBOL}:{tf}`` (``runtime.names``). A client of
``GET /v1/live/{symbol}?tf=`` gets each as an event, ``live`` or ``bar``, whose data is
:func:`event_bar` of the envelope: a closed bar replaces the live one of its time.

A client reads at its own pace, and Redis does not wait for it: what it has yet to
receive is a :class:`Pending`, which holds the newest in-progress bar only (a newer one
replaces it) and at most :data:`MAX_PENDING_BARS` closed bars (the oldest go first), so
a slow client costs the server a bounded amount of memory. A message on a channel that is
not a valid envelope of that symbol and timeframe is skipped. The stream ends when the
client goes: its handler is cancelled (``chronox serve`` cancels handlers whose client
disconnected), and a write to a closed connection ends it too, at the latest on the next
heartbeat.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from chronox_stream.contracts.envelope import decode_bar, format_ts
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.runtime.names import bars_channel, live_channel

#: Closed bars held for a client that reads slower than they come.
MAX_PENDING_BARS = 500
#: Seconds between comments sent to an idle client (proxies keep the connection; a client
#: gone is noticed).
HEARTBEAT_S = 10.0


def event_bar(raw: bytes, symbol: str, tf: str) -> dict[str, Any] | None:
    """The chart's view of an envelope (``time`` in epoch seconds), or ``None`` when it is
    not a valid envelope of ``symbol`` and ``tf``."""
    try:
        bar, source = decode_bar(raw)
    except Rejected:
        return None
    if bar.symbol != symbol or bar.tf != tf:
        return None
    return {"ts": format_ts(bar.ts), "time": int(bar.ts.timestamp()), "open": bar.open,
            "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume,
            "source": source}  # fmt: skip


class Pending:
    """What one client has yet to receive (see the module doc)."""

    def __init__(self) -> None:
        self._bars: deque[bytes] = deque(maxlen=MAX_PENDING_BARS)
        self._live: bytes | None = None
        self._ready = asyncio.Event()

    def offer(self, kind: str, data: bytes) -> None:
        if kind == "live":
            self._live = data
        else:
            self._bars.append(data)
        self._ready.set()

    async def take(self, timeout_s: float) -> list[tuple[str, bytes]]:
        """The events to send, closed bars first; empty after ``timeout_s`` without any."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return []
        self._ready.clear()
        out = [("bar", data) for data in self._bars]
        self._bars.clear()
        if self._live is not None:
            out.append(("live", self._live))
            self._live = None
        return out


def sse(kind: str, data: bytes) -> bytes:
    """One event; ``data`` is a single line of JSON (orjson writes no newline)."""
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


async def _listen(pubsub: Any, kinds: dict[str, str], symbol: str, tf: str,
                  pending: Pending) -> None:  # fmt: skip
    async for message in pubsub.listen():
        if message.get("type") != "message":
            continue
        channel = message["channel"].decode()
        doc = event_bar(message["data"], symbol, tf)
        if doc is not None:
            pending.offer(kinds[channel], orjson.dumps(doc))


async def stream(request: web.Request, client: aioredis.Redis, prefix: str, symbol: str,
                 tf: str) -> web.StreamResponse:  # fmt: skip
    """Serve the events of ``symbol`` and ``tf`` until the client goes."""
    kinds = {live_channel(prefix, symbol, tf): "live", bars_channel(prefix, symbol, tf): "bar"}
    pubsub: Any = client.pubsub()
    await pubsub.subscribe(*kinds)
    pending = Pending()
    listener = asyncio.create_task(_listen(pubsub, kinds, symbol, tf, pending))
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})  # fmt: skip
    try:
        await response.prepare(request)
        await response.write(b": subscribed\n\n")
        while not listener.done():
            events = await pending.take(HEARTBEAT_S)
            await response.write(b"".join(sse(k, d) for k, d in events) or b": idle\n\n")
    except ConnectionError:
        pass  # the client went
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await pubsub.unsubscribe()
        await pubsub.aclose()
    return response
