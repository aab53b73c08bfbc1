"""A worker that stalled past its session (a zombie) writes nothing for partitions that were
taken over meanwhile: its tick state would overwrite what the new owner restored and built on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.contracts.ticks import Tick
from chronox_stream.runtime.topics import message_count
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(300)]

START_MS = 1_705_417_200_000  # 2024-01-16 15:00 UTC
#: Nothing but ticks changes tick state: no idle close, so a quiet changelog means no writer.
QUIET = {"tick_timeframes": "1m", "tick_idle_close_ms": 0}


async def stream_ticks(producer: AIOKafkaProducer, settings: Settings, first: int,
                       count: int) -> None:  # fmt: skip
    for n in range(first, first + count):
        tick = Tick("AAPL", START_MS + n * 250, 100.0 + n % 7, 10, (), 4, f"z{n}", n)
        await producer.send(settings.topic("ticks.raw"), tick.to_json(), key=b"AAPL")
        await asyncio.sleep(0.005)
    await producer.flush()


async def test_a_paused_worker_writes_no_state_after_its_partitions_moved_on(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    first = start_worker("first", **QUIET)

    async def minutes() -> Any:
        return await fetch_rows(settings, "SELECT ts FROM {schema}.bars WHERE symbol = 'AAPL'")

    await stream_ticks(producer, settings, 0, 600)  # 2.5 simulated minutes, ~3 s of wall time
    assert await poll(minutes, timeout_s=60), "the first worker aggregates"
    await stream_ticks(producer, settings, 600, 300)  # in its memory, not all flushed yet
    first.pause()
    changelog = settings.topic("ticks.state")
    paused_at = await message_count(settings, changelog)
    try:
        # Its tick group (not Faust's) is what matters here: no need to wait for "Ready".
        start_worker("second", wait=False, **QUIET)
        await stream_ticks(producer, settings, 900, 600)

        async def settled() -> Any:
            before = await message_count(settings, changelog)
            await asyncio.sleep(4)  # four flush periods
            now = await message_count(settings, changelog)
            return now if paused_at < before == now else None

        written = await poll(settled, timeout_s=150)
        assert written, "the second worker took over and flushed"
    finally:
        first.resume()
    await asyncio.sleep(15)  # the first wakes, finds itself out of the group and rejoins
    assert await message_count(settings, changelog) == written, "the zombie wrote tick state"
    assert first.process.poll() is None, "and it lives on as a member again"
