"""Integration fixtures: the real stack (Kafka, PostgreSQL, Redis), the simulator, workers.

Each test gets its own topic prefix, consumer group, PostgreSQL schema and Redis
prefix, so tests never see each other's data and can run in any order.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from chronox_stream.client.children import Child
from chronox_stream.runtime.topics import delete_topics, ensure_topics
from chronox_stream.settings import Settings
from tests.integration.helpers import row_connections

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
async def stack() -> Settings:
    """The running local stack; fails with a hint when a service does not answer."""
    settings = Settings()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.close()
        conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value(), timeout=5)
        await conn.close()
        client = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
        await client.ping()
        await client.aclose()
    except Exception as exc:  # any service down: one clear message
        pytest.fail(f"local stack not reachable ({type(exc).__name__}); run `chronox stack up`")
    return settings


async def isolated(stack: Settings, sim: Any, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings isolated for one test, pointing at ``sim``; topics created, dropped after."""
    tag = uuid.uuid4().hex[:10]
    settings = stack.with_overrides(
        topic_prefix=f"t{tag}",
        app_id=f"chronox-test-{tag}",
        postgres_schema=f"t{tag}",
        redis_prefix=f"t{tag}:",
        data_dir=tmp_path / "data",
        topic_partitions=4,
        polygon_rest_url=sim.rest_url,
        polygon_ws_url=sim.ws_url,
        polygon_api_key=sim.api_key,
        s3_endpoint_url=sim.s3_url,
        log_level="INFO",
        # A killed worker's partitions move on after 10 s rather than Faust's 60 s.
        faust_session_timeout_s=10,
        # Most test workers never backfill: each loads the calendar and flat-file reader on use.
        preload_backfill=False,
        # Workers run side by side: a test that wants their web server gives each a port.
        web_enabled=False,
    )
    await ensure_topics(settings)
    yield settings
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.postgres_schema}" CASCADE')
    finally:
        await conn.close()
    await delete_topics(settings)


@pytest.fixture(scope="session", autouse=True)
async def close_row_connections() -> AsyncIterator[None]:
    """The tests' reading connections (``helpers.fetch_rows``), closed after the last test."""
    yield
    await row_connections.close()


@pytest.fixture
async def settings(stack: Settings, sim: Any, tmp_path: Path) -> AsyncIterator[Settings]:
    """Isolated settings against the seeded simulator (fixed clock in the past)."""
    async for value in isolated(stack, sim, tmp_path):
        yield value


WorkerFactory = Callable[..., Child]


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start ``chronox worker`` processes of the test's consumer group; all stopped at the end."""
    workers: list[Child] = []

    def start(name: str = "worker", wait: bool = True, **overrides: object) -> Child:
        own = settings.with_overrides(data_dir=tmp_path / f"data-{name}", **overrides)
        child = Child.start(
            name, ["chronox_stream", "worker"], env=own.to_env(), log_path=tmp_path / f"{name}.log"
        )
        workers.append(child)
        if wait:
            child.wait_for_log("Ready", timeout_s=120)
        return child

    yield start
    # Side by side: each may take its shutdown grace, and none waits for another.
    with ThreadPoolExecutor(max_workers=max(len(workers), 1)) as pool:
        list(pool.map(Child.stop, workers))


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A plain aiokafka producer: what any user's Kafka client would be."""
    client = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await client.start()
    yield client
    await client.stop()
