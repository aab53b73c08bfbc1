"""Gap detection on the real stack (the seed's test_gap_detection), observed through what
lands in PostgreSQL and the checkpoints in the backfill-state changelog."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.client.registry import read_entries, send_commands
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.runtime.topics import read_to_end
from chronox_stream.settings import Settings
from tests.fixtures.sim import SimFactory, SimServer
from tests.integration.conftest import WorkerFactory, isolated
from tests.integration.helpers import fetch_rows, poll, rest_aggregates, wait_finished

# One process runs the module, so that its tests share one simulator.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("gap-detection")]

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
async def server(module_sim_factory: SimFactory) -> SimServer:
    """A simulator whose clock is the real one, as the worker's is (its state is per test:
    each test has its own topics, schema and Redis prefix)."""
    return await module_sim_factory(
        clock_start=NOW.isoformat().replace("+00:00", "Z"), flatfiles=False
    )


@pytest.fixture
async def settings(stack: Settings, server: SimServer, tmp_path: Path) -> Any:
    """Here: settings against the module's simulator."""
    async for settings in isolated(stack, server, tmp_path):
        yield settings


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def backfill(
    producer: AIOKafkaProducer, settings: Settings, rid: str, **fields: Any
) -> list[Any]:
    doc = {"request_id": rid, "symbols": ["AAPL"], "strategy": "api", "timeframe": "1h", **fields}
    await producer.send_and_wait(
        settings.topic("control"), key=rid.encode(), value=orjson.dumps(doc)
    )
    return await wait_finished(settings, rid, timeout_s=120)


async def checkpoints(settings: Settings, key: bytes = b"AAPL|1h") -> int:
    """How many windows were checkpointed for ``key`` (one changelog record per window)."""
    topic = f"{settings.app_id}-backfill-state-changelog"
    return sum(1 for r in await read_to_end(settings, topic) if r.key == key)


async def at_least(settings: Settings, n: int) -> bool:
    """Checkpoints are written asynchronously after the phase reported done."""
    return await checkpoints(settings) >= n


def emitted(events: list[Any]) -> int:
    return sum(e["count"] for e in events if e["state"] == "done")


async def test_gap_detected_when_last_backfill_old(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker()
    await backfill(producer, settings, "old-1", start=iso(NOW - timedelta(days=30)),
                   end=iso(NOW - timedelta(days=20)))  # fmt: skip
    before = await checkpoints(settings)
    events = await backfill(producer, settings, "old-2")
    assert emitted(events) > 0, "the 20 days since the last backfill were fetched"

    async def recent_bar_landed() -> bool:
        rows = await fetch_rows(settings, "SELECT max(ts) AS last FROM {schema}.bars")
        return bool(rows) and rows[0]["last"] > NOW - timedelta(days=5)

    assert await poll(recent_bar_landed, timeout_s=60)
    assert await poll(lambda: at_least(settings, before + 3)), "a 20-day gap: three windows"


async def test_no_gaps_when_last_backfill_recent(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker()
    await backfill(producer, settings, "recent-1", start=iso(NOW - timedelta(days=3)))
    assert await poll(lambda: at_least(settings, 1))
    before = await checkpoints(settings)
    events = await backfill(producer, settings, "recent-2")
    assert emitted(events) == 0
    await asyncio.sleep(2)
    assert await checkpoints(settings) == before


async def test_api_backfill_scheduled_for_gaps(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """Never backfilled and no start: the default lookback is fetched, bar for bar."""
    start_worker()
    await backfill(producer, settings, "never-1")
    start = NOW - timedelta(days=settings.backfill_lookback_days)
    key = settings.polygon_api_key.get_secret_value()
    span = f"1/hour/{int(start.timestamp() * 1000)}/{int(NOW.timestamp() * 1000) - 3_600_000}"
    served = await rest_aggregates(settings.polygon_rest_url, key, "AAPL", span)
    assert served

    async def landed() -> Any:
        rows = await fetch_rows(
            settings, "SELECT ts FROM {schema}.bars WHERE tf = '1h' ORDER BY ts"
        )
        return rows if len(rows) >= len(served) else None

    rows = await poll(landed, timeout_s=60)
    assert rows is not None, "every served bar of the lookback landed"
    assert {int(r["ts"].timestamp() * 1000) for r in rows} >= {b["t"] for b in served}


async def test_multiple_gap_windows_handled(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker()
    events = await backfill(producer, settings, "multi-1", start=iso(NOW - timedelta(days=29)),
                            end=iso(NOW - timedelta(days=1)))  # fmt: skip
    assert emitted(events) > 0
    assert await poll(lambda: at_least(settings, 4)), "28 days take at least four 7-day windows"


async def test_gap_detection_updates_registry_timestamp(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    await send_commands(settings, [RegistryCommand(op="add", symbol="AAPL", strategy="api")])
    start_worker()

    async def registered() -> bool:
        return bool(await read_entries(settings))

    assert await poll(registered, timeout_s=60)
    await backfill(producer, settings, "reg-ts-1", symbols=[])

    async def stamped() -> Any:
        (entry,) = await read_entries(settings)
        return entry.last_backfill

    last = await poll(stamped, timeout_s=60)
    assert last is not None and abs((last - datetime.now(UTC)).total_seconds()) < 600
