"""At-least-once delivery: each bar lands in PostgreSQL once, whatever overlaps, replays or
crashes on the way.

Kafka may carry a repeat of an envelope after a crash (the README's "Delivery guarantee"):
a repeat is the same envelope, byte for byte, and PostgreSQL holds one row per bar.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.runtime.topics import message_count, read_to_end
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import (
    fetch_rows,
    poll,
    rest_aggregates,
    trading_date_ms,
    wait_finished,
)

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "NVDA"]
# Whole past sessions: the simulator's clock (2024-01-17 21:00Z) keeps running during a test.
START, END = "2024-01-11", "2024-01-16"


async def send(producer: AIOKafkaProducer, settings: Settings, rid: str, **fields: Any) -> None:
    doc = {"request_id": rid, "symbols": SYMBOLS, "start": START, "end": END, **fields}
    await producer.send_and_wait(
        settings.topic("control"), key=rid.encode(), value=orjson.dumps(doc)
    )


async def truth(sim: Any) -> dict[tuple[str, int], tuple[float, ...]]:
    """What the simulator serves for the range: the same trades behind flat files and REST."""
    out = {}
    span = f"1/minute/{START}/{END}"  # New York dates, as the request's
    for symbol in SYMBOLS:
        for b in await rest_aggregates(sim.rest_url, sim.api_key, symbol, span):
            out[(symbol, b["t"])] = (b["o"], b["h"], b["l"], b["c"], b["v"])
    return out


async def stored(settings: Settings) -> list[Any]:
    """The 1m rows of the requested range (the snapshot phase adds the current minute too)."""
    return await fetch_rows(
        settings,
        "SELECT symbol, ts, open, high, low, close, volume, source, revision, updated_at "
        "FROM {schema}.bars WHERE tf = '1m' AND ts >= $1 AND ts <= $2",
        datetime.fromtimestamp(trading_date_ms(START) / 1000, UTC),
        datetime.fromtimestamp(trading_date_ms(END, end_of_day=True) / 1000, UTC),
    )


def as_truth(rows: list[Any]) -> dict[tuple[str, int], tuple[float, ...]]:
    return {(r["symbol"], int(r["ts"].timestamp() * 1000)):
            (r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows}  # fmt: skip


async def test_overlapping_backfill_lands_each_bar_once_and_a_replay_changes_nothing(
    settings: Settings, sim: Any, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    expected = await truth(sim)
    start_worker()
    await send(producer, settings, "ov-1", strategy="flatpack+api+snapshot")
    await wait_finished(settings, "ov-1", timeout_s=240)
    rows = await poll(lambda: _rows_when(settings, len(expected)), timeout_s=120)
    assert as_truth(rows) == expected
    assert {r["revision"] for r in rows} == {1}
    assert {r["source"] for r in rows} <= {"flatpack", "api"}
    bar_messages = await message_count(settings, settings.topic("bars.1m"))
    outside = bar_messages - len(expected)
    assert outside <= len(SYMBOLS), "each bar once, plus at most the snapshot's current minute"

    await send(producer, settings, "ov-2", strategy="flatpack+api+snapshot")
    events = await wait_finished(settings, "ov-2", timeout_s=240)
    assert sum(e["count"] for e in events if e["state"] == "done") == 0
    assert await message_count(settings, settings.topic("bars.1m")) == bar_messages
    again = await stored(settings)
    assert {(r["symbol"], r["ts"], r["updated_at"]) for r in again} == {
        (r["symbol"], r["ts"], r["updated_at"]) for r in rows
    }


async def _rows_when(settings: Settings, n: int) -> list[Any] | None:
    rows = await stored(settings)
    return rows if len(rows) >= n else None


@pytest.mark.long
async def test_a_killed_worker_leaves_no_hole_and_no_duplicate(
    settings: Settings, sim: Any, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """Two workers share the symbols; one is SIGKILLed mid-run; the survivor finishes."""
    expected = await truth(sim)
    first = start_worker("w1", table_standby_replicas=1)
    start_worker("w2", table_standby_replicas=1)
    await send(producer, settings, "kill-1", strategy="api", throttle_ms=1)

    async def some_landed() -> bool:
        return len(await stored(settings)) > 200

    assert await poll(some_landed, timeout_s=120)
    first.kill()
    rows = await poll(lambda: _rows_when(settings, len(expected)), timeout_s=240)
    assert rows is not None, "the survivor did not finish the backfill"
    assert as_truth(rows) == expected
    envelopes: dict[str, set[bytes]] = {}
    for record in await read_to_end(settings, settings.topic("bars.1m")):
        envelopes.setdefault(orjson.loads(record.value)["dedup_key"], set()).add(record.value)
    assert all(len(versions) == 1 for versions in envelopes.values()), "a repeat is identical"
