"""One REST request budget per minute shared by every worker, kept in Redis.

A fixed one-minute window: each request increments the window's counter; past
the limit a worker sleeps until the next window. Polygon counts per minute too,
so this matches what its 429s enforce (free tier: 5 per minute).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis


class RedisRateLimiter:
    """``acquire`` before each REST request; workers with the same prefix share the budget."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        per_minute: int,
        prefix: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._per_minute = per_minute
        self._prefix = prefix
        self._clock = clock
        self._sleep = sleep

    async def acquire(self) -> None:
        """Return when this minute's budget has room for one more request."""
        while True:
            now = self._clock()
            window = int(now // 60)
            key = f"{self._prefix}ratelimit:rest:{window}"
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
            if int(count) <= self._per_minute:
                return
            await self._sleep((window + 1) * 60 - now + 0.01)
