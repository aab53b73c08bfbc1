"""Redis mirror: ``PUBLISH <prefix>bars:{SYMBOL}:{tf}`` per envelope and the latest bar per key.

The latest bar lives at ``<prefix>bars:latest:{SYMBOL}:{tf}`` and only moves
forward in time: the script compares ``ts`` so that an out-of-order batch never
replaces a newer bar with an older one.

A batch is one script call per chunk rather than one command per bar: Redis does
the same work, and the client packs one command instead of thousands (in a
pipeline, redis-py's CPU per command, not Redis, bounds the rate).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from chronox_stream.contracts.envelope import format_ts
from chronox_stream.domain.bars import Bar
from chronox_stream.runtime.names import bars_channel, latest_bar_key, live_channel
from chronox_stream.sinks.base import SinkRecord

#: KEYS: latest-bar keys; ARGV: (ts, envelope) per key, then (channel, envelope) per PUBLISH.
#: The latest bars are set first, so a subscriber who reads the key on a message finds it.
_SET_LATEST_THEN_PUBLISH = """
for i = 1, #KEYS do
  local ts, envelope = ARGV[2 * i - 1], ARGV[2 * i]
  local current = redis.call('GET', KEYS[i])
  local older = false
  if current then
    local ok, doc = pcall(cjson.decode, current)
    older = ok and type(doc) == 'table' and doc['ts'] ~= nil and doc['ts'] > ts
  end
  if not older then redis.call('SET', KEYS[i], envelope) end
end
for j = 2 * #KEYS + 1, #ARGV, 2 do
  redis.call('PUBLISH', ARGV[j], ARGV[j + 1])
end
return 1
"""

#: Bars per script call: keeps each call (which blocks Redis) to a few milliseconds.
CHUNK = 1000


class RedisSink:
    """Publishes envelopes and keeps the latest one per symbol and timeframe."""

    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_SET_LATEST_THEN_PUBLISH)

    @classmethod
    def connect(cls, url: str, *, prefix: str, timeout_s: float) -> RedisSink:
        """A client whose connects and commands give up after ``timeout_s``, so a server that
        stopped answering fails a write (then retried) instead of hanging the worker."""
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        return cls(client, prefix=prefix)

    async def store(self, batch: Sequence[SinkRecord]) -> None:
        """:class:`~chronox_stream.sinks.base.BarSink`'s write: publish the batch's envelopes."""
        await self.publish([(record.bar, record.payload) for record in batch])

    async def publish(self, bars: Sequence[tuple[Bar, bytes]]) -> None:
        """Publish every bar's envelope, in order, and move the latest bars forward.

        Each bar comes with its envelope's wire bytes (as consumed from Kafka), which
        are what subscribers receive: nothing is serialized twice.
        """
        for offset in range(0, len(bars), CHUNK):
            await self._publish_chunk(bars[offset : offset + CHUNK])

    async def _publish_chunk(self, bars: Sequence[tuple[Bar, bytes]]) -> None:
        newest: dict[tuple[str, str], tuple[Bar, bytes]] = {}
        messages: list[str | bytes] = []
        for bar, payload in bars:
            messages += (bars_channel(self.prefix, bar.symbol, bar.tf), payload)
            key = (bar.symbol, bar.tf)
            if key not in newest or bar.ts >= newest[key][0].ts:
                newest[key] = (bar, payload)
        keys = [latest_bar_key(self.prefix, symbol, tf) for symbol, tf in newest]
        latest: list[str | bytes] = []
        for bar, payload in newest.values():
            latest += (format_ts(bar.ts), payload)
        await self._script(keys=keys, args=latest + messages)

    async def publish_live(self, bars: Sequence[tuple[Bar, bytes]]) -> None:
        """Publish in-progress bars on their ``live:`` channels (Redis only: not final)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for bar, payload in bars:
                pipe.publish(live_channel(self.prefix, bar.symbol, bar.tf), payload)
            await pipe.execute()

    async def ping(self) -> None:
        await self.client.ping()  # type: ignore[misc]  # redis-py types it sync-or-async

    async def close(self) -> None:
        await self.client.aclose()
