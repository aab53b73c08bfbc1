"""One REST request budget per minute shared by every worker, kept in Redis.

A fixed one-minute window: each request increments the window's counter; past
the limit a worker sleeps until the next window. Polygon counts per minute too,
so this matches what its 429s enforce (free tier: 5 per minute).
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, *, per_minute: int, prefix: str) -> None:
        self._client = client
        self._per_minute = per_minute
        self._prefix = prefix

    async def acquire(self) -> None:
        while True:
            now = time.time()
            window = int(now // 60)
            key = f"{self._prefix}ratelimit:rest:{window}"
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
            if int(count) <= self._per_minute:
                return
            await asyncio.sleep((window + 1) * 60 - now + 0.01)
