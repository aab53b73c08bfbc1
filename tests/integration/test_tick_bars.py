"""Raw ticks on Kafka to stream bars in PostgreSQL: the exchange's own bars, once each.

The ticks are the simulator's trades of a whole session in report order (151 of
AAPL's come late, up to 15.8 minutes); see ``tick_data``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.settings import Settings
from chronox_stream.topics import read_to_end
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import poll
from tests.integration.tick_data import (
    NEXT_MIDNIGHT,
    NEXT_SESSION,
    SESSION,
    TICK_WORKER,
    expected_session_bars,
    produce_ticks,
    reported_ticks,
    session_bars,
    settled_session_bars,
)

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "NVDA")


async def test_stream_bars_equal_the_exchanges_bars_including_late_corrections(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer, sim: Any
) -> None:
    start_worker(**TICK_WORKER)
    for day in (SESSION, NEXT_SESSION):
        await produce_ticks(producer, settings, reported_ticks(SYMBOLS, day))
    expected = await expected_session_bars(sim, SYMBOLS)
    ours = await poll(lambda: settled_session_bars(settings, len(expected)), timeout_s=180)
    assert (ours or await session_bars(settings)) == expected
    records = await read_to_end(settings, settings.topic("bars.1m"))
    minutes = Counter(orjson.loads(r.value)["dedup_key"] for r in records)
    corrected = [key for key, n in minutes.items() if n > 1]
    assert corrected, "late trades arrived after their minute closed: corrections were due"
    assert len(corrected) < len(minutes) / 4, "only late trades' minutes are emitted twice"


async def test_a_worker_killed_mid_stream_loses_and_double_counts_nothing(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer, sim: Any
) -> None:
    first = start_worker("first", **TICK_WORKER)
    ticks = reported_ticks(SYMBOLS, SESSION)
    half = len(ticks) // 2
    await produce_ticks(producer, settings, ticks[:half])

    async def some_bars() -> bool:
        return len(await session_bars(settings)) > 100

    await poll(some_bars, timeout_s=120)
    first.kill()  # SIGKILL: no flush, no commit, mid-window
    start_worker("second", **TICK_WORKER)
    await produce_ticks(producer, settings, ticks[half:])
    await produce_ticks(producer, settings, reported_ticks(SYMBOLS, NEXT_SESSION))
    expected = await expected_session_bars(sim, SYMBOLS)
    ours = await poll(lambda: settled_session_bars(settings, len(expected)), timeout_s=180)
    assert (ours or await session_bars(settings)) == expected
    # What a consumer of the bar topic ends with: the last envelope of each key. A crash
    # between a send and its dedup record can repeat an identical envelope (at least once).
    last: dict[tuple[str, str, datetime], tuple[Any, ...]] = {}
    for record in await read_to_end(settings, settings.topic("bars.1m")):
        doc = orjson.loads(record.value)
        ohlcv, features = doc["ohlcv"], doc["features"]
        last[(doc["symbol"], "1m", datetime.fromisoformat(doc["ts"]))] = (
            ohlcv["open"], ohlcv["high"], ohlcv["low"], ohlcv["close"], ohlcv["volume"],
            features["vwap"], features["transactions"],
        )  # fmt: skip
    minutes = {key: bar for key, bar in expected.items() if key[1] == "1m"}
    assert {key: bar for key, bar in last.items() if key[2] < NEXT_MIDNIGHT} == minutes
