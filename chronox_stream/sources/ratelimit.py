"""One REST request budget per minute shared by every worker, kept in Redis.

A fixed one-minute window: each request increments the window's counter; past
the limit a worker sleeps until the next window. Polygon counts per minute too,
so this matches what its 429s enforce (free tier: 5 per minute).

Redis down never stops a backfill: the worker then counts its own requests against
the same budget until Redis answers again (the workers together may exceed it
meanwhile; the REST client honours the 429s that follows).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from chronox_stream.runtime.failures import is_world_failure
from chronox_stream.runtime.names import rest_rate_key

log = logging.getLogger(__name__)


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
        self._local: tuple[int, int] = (0, 0)  # (window, requests) while Redis is down

    async def acquire(self) -> None:
        """Return when this minute's budget has room for one more request."""
        while True:
            now = self._clock()
            window = int(now // 60)
            try:
                count = await self._count_shared(window)
            except Exception as failure:
                if not is_world_failure(failure):
                    raise
                count = self._count_local(window, failure)
            if count <= self._per_minute:
                return
            await self._sleep((window + 1) * 60 - now + 0.01)

    async def _count_shared(self, window: int) -> int:
        key = rest_rate_key(self._prefix, window)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        return int(count)

    def _count_local(self, window: int, failure: Exception) -> int:
        last_window, count = self._local
        if last_window != window:
            log.warning("REST rate limit counted by this worker alone: Redis failed (%s)",
                        type(failure).__name__)  # fmt: skip
            count = 0
        self._local = (window, count + 1)
        return count + 1
