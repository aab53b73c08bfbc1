"""Redis mirror: ``PUBLISH <prefix>bars:{SYMBOL}:{tf}`` per envelope and the latest bar per key.

The latest bar lives at ``<prefix>bars:latest:{SYMBOL}:{tf}`` and only moves
forward in time: a Lua script compares ``ts`` so that an out-of-order batch
never replaces a newer bar with an older one.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from chronox_stream.bars import Bar
from chronox_stream.envelope import format_ts

_SET_IF_NOT_OLDER = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and doc['ts'] and doc['ts'] > ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


def channel_name(prefix: str, symbol: str, tf: str) -> str:
    return f"{prefix}bars:{symbol}:{tf}"


def latest_key(prefix: str, symbol: str, tf: str) -> str:
    return f"{prefix}bars:latest:{symbol}:{tf}"


class RedisSink:
    """Publishes envelopes and keeps the latest one per symbol and timeframe."""

    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self.client = client
        self._prefix = prefix
        self._set_latest = client.register_script(_SET_IF_NOT_OLDER)

    @classmethod
    def connect(cls, url: str, *, prefix: str) -> RedisSink:
        return cls(aioredis.Redis.from_url(url), prefix=prefix)

    async def publish(self, bars: Sequence[tuple[Bar, bytes]]) -> None:
        """One pipeline per batch: every PUBLISH, then one latest-bar update per key.

        Each bar comes with its envelope's wire bytes (as consumed from Kafka), which
        are what subscribers receive: nothing is serialized twice.
        """
        if not bars:
            return
        newest: dict[tuple[str, str], tuple[Bar, bytes]] = {}
        async with self.client.pipeline(transaction=False) as pipe:
            for bar, payload in bars:
                pipe.publish(channel_name(self._prefix, bar.symbol, bar.tf), payload)
                key = (bar.symbol, bar.tf)
                if key not in newest or bar.ts >= newest[key][0].ts:
                    newest[key] = (bar, payload)
            for (symbol, tf), (bar, payload) in newest.items():
                await self._set_latest(
                    keys=[latest_key(self._prefix, symbol, tf)],
                    args=[format_ts(bar.ts), payload],
                    client=pipe,
                )
            await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()
