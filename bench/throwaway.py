"""Dropping what one benchmark run made on the shared stack.

Each run works under its own topic prefix, app id, PostgreSQL schema and Redis prefix. Left
behind, its topics pile up on the broker, and every Kafka client started later (a worker,
a test, ``chronox ingest``) reads the whole cluster's metadata: a few thousand stale topics
cost each client start a measurable share of its CPU.
"""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from chronox_stream.runtime.topics import delete_topics
from chronox_stream.settings import Settings


async def drop_run(settings: Settings) -> None:
    """Delete the run's topics (changelogs included), its schema and its Redis keys."""
    await delete_topics(settings)
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.postgres_schema}" CASCADE')
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        keys = [key async for key in client.scan_iter(match=f"{settings.redis_prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
