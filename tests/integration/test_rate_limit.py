"""The REST budget is one per minute for all workers, counted in a real Redis."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from chronox_stream.settings import Settings
from chronox_stream.sources.ratelimit import RedisRateLimiter
from tests.fixtures.sim import free_port

pytestmark = pytest.mark.integration


async def test_workers_share_one_budget_per_minute(stack: Settings) -> None:
    client = aioredis.Redis.from_url(stack.redis_url.get_secret_value())
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    now = [60.0 * 29_000_000 + 10]  # ten seconds into a minute
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    one, other = (
        RedisRateLimiter(client, per_minute=3, prefix=prefix, clock=lambda: now[0], sleep=sleep)
        for _ in range(2)
    )
    for limiter in (one, other, one):
        await limiter.acquire()
    assert waits == [], "three requests fit in a budget of three"
    await other.acquire()
    assert len(waits) == 1 and 49.9 < waits[0] <= 50.1, "the fourth waits for the next minute"
    for limiter in (one, one):
        await limiter.acquire()
    assert len(waits) == 1, "the new minute has room for two more"
    await one.acquire()
    assert len(waits) == 2, "and not for a fourth"
    await client.aclose()


async def test_redis_down_leaves_each_worker_its_own_budget() -> None:
    client = aioredis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1, socket_timeout=1
    )
    now = [60.0 * 29_000_000 + 10]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RedisRateLimiter(client, per_minute=2, prefix="down:", clock=lambda: now[0],
                               sleep=sleep)  # fmt: skip
    await limiter.acquire()
    await limiter.acquire()
    assert waits == [], "with Redis unreachable the requests still go out, within the budget"
    await limiter.acquire()
    assert len(waits) == 1 and 49.9 < waits[0] <= 50.1, "the third waits for the next minute"
    await client.aclose()
