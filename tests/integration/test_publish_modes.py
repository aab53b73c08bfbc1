"""Publish modes, observed on the real stack: which store has a bar first, Redis mirroring,
the envelope's dedup key, and the throttle between publishes."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import (
    consume,
    fetch_rows,
    pubsub_messages,
    rest_aggregates,
    wait_finished,
)

pytestmark = pytest.mark.integration

DAY = "2024-01-16"
BROKEN_DSN = "postgresql://chronox:chronox@127.0.0.1:1/chronox"


async def request(producer: AIOKafkaProducer, settings: Settings, rid: str, **fields: Any) -> None:
    doc = {"request_id": rid, "symbols": ["AAPL"], "strategy": "api", "start": DAY, "end": DAY}
    doc.update(fields)
    await producer.send_and_wait(
        settings.topic("control"), key=rid.encode(), value=orjson.dumps(doc)
    )


async def expected_count(sim: Any) -> int:
    bars = await rest_aggregates(
        sim.rest_url, sim.api_key, "AAPL", f"1/minute/{DAY}/{DAY}"  # a New York date
    )
    return len(bars)


async def test_kafka_first_mode(
    settings: Settings, sim: Any, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """Kafka first, then the sinks: with the database down, Kafka and Redis get every bar,
    the database nothing, and its sink retries instead of dropping the bars."""
    total = await expected_count(sim)
    redis = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    pubsub = redis.pubsub()
    await pubsub.psubscribe(f"{settings.redis_prefix}bars:*")
    worker = start_worker(postgres_dsn=BROKEN_DSN)
    await request(producer, settings, "kf-1", publish_mode="kafka-first")
    envelopes = await consume(settings, settings.topic("bars.1m"), until=lambda r: len(r) >= total)
    assert len(envelopes) == total
    mirrored = await pubsub_messages(pubsub, total, timeout_s=60)
    assert sorted(mirrored) == sorted(r.value for r in envelopes), "Redis does not wait for it"
    assert await fetch_rows(settings, "SELECT 1 FROM {schema}.bars") == []
    assert "postgres write failed" in worker.log_path.read_text()
    await pubsub.aclose()
    await redis.aclose()


async def test_db_first_mode(
    settings: Settings, sim: Any, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """The database row exists before its envelope is on the bar topic."""
    total = await expected_count(sim)
    start_worker()
    await request(producer, settings, "db-1", publish_mode="db-first")
    consumer = AIOKafkaConsumer(
        settings.topic("bars.1m"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    seen, absent = 0, []
    try:
        async with asyncio.timeout(120):
            while seen < total:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    rows = await fetch_rows(settings, "SELECT ts FROM {schema}.bars")
                    stored = {r["ts"].strftime("%Y-%m-%dT%H:%M:%SZ") for r in rows}
                    stamps = [orjson.loads(r.value)["ts"] for r in records]
                    absent += [ts for ts in stamps if ts not in stored]
                    seen += len(records)
    finally:
        await consumer.stop()
    assert seen == total
    assert absent == [], "an envelope reached Kafka before its row reached PostgreSQL"


async def test_envelope_dedup_key_format(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker()
    await request(producer, settings, "fmt-1")
    await wait_finished(settings, "fmt-1")
    records = await consume(settings, settings.topic("bars.1m"), until=lambda r: len(r) > 100)
    assert records
    for record in records:
        doc = orjson.loads(record.value)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", doc["ts"])
        assert doc["dedup_key"] == f"AAPL|1m|{doc['ts']}"
        assert record.key == b"AAPL"


async def test_redis_mirror_kafka_first(
    settings: Settings, sim: Any, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """Redis carries byte-for-byte the envelopes of the bar topic, and the latest one."""
    total = await expected_count(sim)
    redis = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"{settings.redis_prefix}bars:AAPL:1m")
    start_worker()
    await request(producer, settings, "mirror-1")
    payloads = await pubsub_messages(pubsub, total)
    records = await consume(settings, settings.topic("bars.1m"), until=lambda r: len(r) >= total)
    assert sorted(payloads) == sorted(r.value for r in records)
    latest = await redis.get(f"{settings.redis_prefix}bars:latest:AAPL:1m")
    assert latest == max(payloads, key=lambda p: orjson.loads(p)["ts"])
    await pubsub.aclose()
    await redis.aclose()


async def test_throttle_applied_between_publishes(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker()
    await request(producer, settings, "thr-1", throttle_ms=100,
                  start="2024-01-16T15:00:00Z", end="2024-01-16T15:20:00Z")  # fmt: skip
    await wait_finished(settings, "thr-1")
    records = await consume(settings, settings.topic("bars.1m"), until=lambda r: len(r) >= 10)
    assert len(records) >= 10
    stamps = sorted(r.timestamp for r in records)
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 99, gaps  # ms resolution of Kafka timestamps
