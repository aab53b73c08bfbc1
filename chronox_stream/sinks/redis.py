"""Redis mirror: ``PUBLISH <prefix>bars:{SYMBOL}:{tf}`` per envelope and the latest bar per key.

The latest bar lives at ``<prefix>bars:latest:{SYMBOL}:{tf}`` and only moves
forward in time: the script compares ``ts`` so that an out-of-order batch never
replaces a newer bar with an older one.

A batch is one script call per chunk rather than one command per bar: Redis does
the same work, and the client packs one command instead of thousands (in a
pipeline, redis-py's CPU per command, not Redis, bounds the rate). The call's
arguments are per key and per run of bars of one key, not per bar: the envelopes
go as one string with their lengths, which the script cuts again.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import redis.asyncio as aioredis

from chronox_stream.contracts.envelope import format_ts
from chronox_stream.domain.bars import Bar
from chronox_stream.runtime.names import bars_channel, latest_bar_key, live_channel
from chronox_stream.sinks.base import SinkRecord

#: KEYS: the latest-bar keys of the chunk. ARGV: per key, the newest bar's ts and envelope
#: and the key's channel; then the runs (per run of bars of one key in a row: the key's
#: number and how many bars), the envelopes' lengths (both as little-endian uint32) and
#: the envelopes, concatenated. The latest bars are set first, so a subscriber who reads
#: the key on a message finds it.
_SET_LATEST_THEN_PUBLISH = """
local n = #KEYS
for i = 1, n do
  local ts, envelope = ARGV[3 * i - 2], ARGV[3 * i - 1]
  local current = redis.call('GET', KEYS[i])
  local older = false
  if current then
    local ok, doc = pcall(cjson.decode, current)
    older = ok and type(doc) == 'table' and doc['ts'] ~= nil and doc['ts'] > ts
  end
  if not older then redis.call('SET', KEYS[i], envelope) end
end
local runs, lengths, envelopes = ARGV[3 * n + 1], ARGV[3 * n + 2], ARGV[3 * n + 3]
local at, bar = 1, 0
for r = 1, #runs, 8 do
  local key, count = struct.unpack('<I4I4', runs, r)
  local channel = ARGV[3 * key]
  for _ = 1, count do
    local length = struct.unpack('<I4', lengths, 4 * bar + 1)
    redis.call('PUBLISH', channel, string.sub(envelopes, at, at + length - 1))
    at, bar = at + length, bar + 1
  end
end
return 1
"""

#: Bars per script call: keeps each call (which blocks Redis) to a few milliseconds.
CHUNK = 1000


def chunk_arguments(prefix: str, bars: Sequence[tuple[Bar, bytes]]
                    ) -> tuple[list[str], list[str | bytes]]:  # fmt: skip
    """The script's KEYS and ARGV for a chunk of ``bars`` with their envelopes.

    A few arguments per run of bars of one symbol and timeframe and three per chunk,
    instead of two per bar: packing thousands of arguments took most of the client's CPU
    of a chunk. The newest bar of a key is the one with the latest ``ts``, the last one of
    them when several share it.
    """
    slots: dict[tuple[str, str], int] = {}  # (symbol, tf) -> its number in KEYS, from 0
    newest: list[tuple[Bar, bytes]] = []
    runs: list[int] = []
    previous: tuple[str, str] | None = None
    slot = 0
    for item in bars:
        bar = item[0]
        key = (bar.symbol, bar.tf)
        if key != previous:
            previous = key
            found = slots.get(key)
            if found is None:
                slot = slots[key] = len(newest)
                newest.append(item)
            else:
                slot = found
            runs += (slot + 1, 0)
        if bar.ts >= newest[slot][0].ts:
            newest[slot] = item
        runs[-1] += 1
    args: list[str | bytes] = []
    for (symbol, tf), (bar, payload) in zip(slots, newest, strict=True):
        args += (format_ts(bar.ts), payload, bars_channel(prefix, symbol, tf))
    payloads = [payload for _, payload in bars]
    lengths = struct.pack(f"<{len(payloads)}I", *map(len, payloads))
    args += (struct.pack(f"<{len(runs)}I", *runs), lengths, b"".join(payloads))
    return [latest_bar_key(prefix, symbol, tf) for symbol, tf in slots], args


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
        keys, args = chunk_arguments(self.prefix, bars)
        await self._script(keys=keys, args=args)

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
