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


DROPPED = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
)
"""What a connection the server closed or restarted under it raises."""


class _Connections:
    """One open PostgreSQL connection per DSN for the tests' reads: the tests poll twice a
    second, and a connection per read cost about 25 ms of CPU (client and server, SCRAM)."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[asyncpg.Connection, asyncio.Lock]] = {}

    async def fetch(self, dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        """``sql``'s rows; a connection the server dropped (a restarted outage database) is
        replaced once."""
        try:
            return await self._fetch_once(dsn, sql, *args)
        except DROPPED:
            dropped = self._open.pop(dsn, None)
            if dropped is not None:
                dropped[0].terminate()
        return await self._fetch_once(dsn, sql, *args)

    async def _fetch_once(self, dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn, lock = await self._connection(dsn)
        async with lock:
            return list(await conn.fetch(sql, *args, timeout=60))

    async def _connection(self, dsn: str) -> tuple[asyncpg.Connection, asyncio.Lock]:
        found = self._open.get(dsn)
        if found is None or found[0].is_closed():
            found = (await asyncpg.connect(dsn), asyncio.Lock())
            self._open[dsn] = found
        return found

    async def close(self) -> None:
        for conn, _ in self._open.values():
            try:
                await conn.close(timeout=5)
            except (*DROPPED, TimeoutError):  # a private database already stopped
                conn.terminate()
        self._open.clear()


row_connections = _Connections()


async def fetch_rows(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    text = sql.format(schema=f'"{settings.postgres_schema}"')
    try:
        return await row_connections.fetch(settings.postgres_dsn.get_secret_value(), text, *args)
    except asyncpg.UndefinedTableError:
        return []


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


def trading_date_ms(day: str, *, end_of_day: bool = False) -> int:
    """Epoch ms of a New York trading date's first millisecond (or its last): what a
    ``YYYY-MM-DD`` in a request (or in Polygon's aggregates path) covers."""
    from datetime import date, datetime, time, timedelta
    from zoneinfo import ZoneInfo

    first = date.fromisoformat(day) + timedelta(days=1 if end_of_day else 0)
    midnight = datetime.combine(first, time.min, tzinfo=ZoneInfo("America/New_York"))
    return int(midnight.timestamp() * 1000) - (1 if end_of_day else 0)


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
