"""Helpers for integration tests: read topics, poll PostgreSQL, fetch from the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from chronox_stream.settings import Settings


async def consume(
    settings: Settings,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout_s: float = 60,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``until(records)`` holds or time runs out."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not until(records) and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def poll(check: Callable[[], Awaitable[Any]], *, timeout_s: float = 90) -> Any:
    """Call ``check`` until it returns something truthy; return it (or the last falsy value)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await check()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(0.5)


async def fetch_rows(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    try:
        return list(await conn.fetch(sql.format(schema=f'"{settings.postgres_schema}"'), *args))
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


async def rest_aggregates(
    base_url: str, api_key: str, symbol: str, path_tail: str, *, adjusted: bool = False
) -> list[dict[str, Any]]:
    """Every aggregate the simulator serves for a query, following ``next_url``; unadjusted
    (what the pipeline stores) unless ``adjusted``."""
    headers = {"Authorization": f"Bearer {api_key}"}
    url: str | None = f"{base_url}/v2/aggs/ticker/{symbol}/range/{path_tail}"
    params: dict[str, str] | None = {
        "limit": "50000", "sort": "asc", "adjusted": str(adjusted).lower(),
    }  # fmt: skip
    results: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        while url:
            async with session.get(url, params=params, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                body = await resp.json()
            results.extend(body.get("results", []))
            url, params = body.get("next_url"), None
    return results


def ms(day: str, *, end_of_day: bool = False) -> int:
    """Epoch ms of a UTC day's start (or its last millisecond)."""
    from datetime import UTC, datetime

    moment = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000) + (86_400_000 - 1 if end_of_day else 0)


async def wait_finished(
    settings: Settings, request_id: str, *, timeout_s: float = 120
) -> list[Any]:
    """The request's status events, read until every work item reported ``finished``."""
    import orjson

    def done(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        events = [orjson.loads(r.value) for r in records if r.key == request_id.encode()]
        accepted = [e for e in events if e["state"] == "accepted"]
        finished = [e for e in events if e["state"] == "finished"]
        return bool(accepted) and len(finished) >= accepted[0]["count"]

    records = await consume(settings, settings.topic("status"), until=done, timeout_s=timeout_s)
    events = [orjson.loads(r.value) for r in records if r.key == request_id.encode()]
    seen = [(e.get("symbol"), e.get("phase"), e["state"]) for e in events]
    assert done(records), f"request {request_id} did not finish in {timeout_s}s; saw {seen}"
    return events


async def pubsub_messages(pubsub: Any, n: int, *, timeout_s: float = 60) -> list[bytes]:
    """Payloads of up to ``n`` pub/sub messages, reading until ``timeout_s`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    payloads: list[bytes] = []
    while len(payloads) < n and loop.time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is not None:
            payloads.append(message["data"])
    return payloads
