"""The tick aggregator in the batch loop: bars acknowledged, then state, then offsets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from chronox_stream.agents import ticks
from chronox_stream.agents.ticks import TickAggregator
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.runtime.app import Consumed, Runtime
from chronox_stream.runtime.loop import BatchLoop
from chronox_stream.runtime.names import TopicNames
from chronox_stream.settings import Settings
from tests.unit.runtime.fakes import (
    FakeBatchProducer,
    FakeConsumer,
    Log,
    last,
    position,
    record,
)

SETTINGS = Settings(tick_idle_close_ms=0)
NAMES = TopicNames.for_settings(SETTINGS)
TP = TopicPartition(NAMES.ticks_raw, 0)
MINUTE = int(datetime(2024, 1, 16, 15, 30, tzinfo=UTC).timestamp() * 1000)


def tick(ts: int, price: float = 100.0) -> bytes:
    return orjson.dumps({"symbol": "AAPL", "ts": ts, "price": price, "size": 10})


class FakeRuntime:
    def __init__(self) -> None:
        self.settings = SETTINGS
        self.dead: list[tuple[int, str]] = []

    async def dead_letter(self, message: Consumed, rejected: Rejected) -> None:
        self.dead.append((message.offset, rejected.reason))


@pytest.fixture(autouse=True)
def empty_changelog(monkeypatch: pytest.MonkeyPatch) -> None:
    async def read_partitions(settings: Settings, partitions: list[Any]) -> list[Any]:
        return []

    monkeypatch.setattr(ticks, "read_partitions", read_partitions)


def sent(producer: FakeBatchProducer, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
    """The records sent to ``topic`` in record batches: (partition, key, value)."""
    return [(partition, key, value) for to, partition, batch in producer.batches if to == topic
            for key, value in batch.records]  # fmt: skip


async def aggregator_loop(
    log: Log, checkpoint_every_s: float = 0.0
) -> tuple[BatchLoop, FakeConsumer, FakeBatchProducer, FakeRuntime]:
    consumer = FakeConsumer(log, {TP})
    producer = FakeBatchProducer(log)
    runtime = FakeRuntime()
    aggregator = TickAggregator(cast(Runtime, runtime), cast(AIOKafkaProducer, producer))
    loop = BatchLoop("ticks", cast(AIOKafkaConsumer, consumer), aggregator,
                     batch_size=100, within_ms=1,
                     checkpoint_every_s=checkpoint_every_s)  # fmt: skip
    await loop.on_partitions_assigned([TP])
    return loop, consumer, producer, runtime


async def test_closed_bars_are_acknowledged_then_state_written_then_offsets_committed() -> None:
    log: Log = []
    loop, consumer, producer, _ = await aggregator_loop(log)
    # two trades in one minute, one in the next: past the grace, the first minute closes
    values = [tick(MINUTE + 1_000), tick(MINUTE + 2_000, 101.0), tick(MINUTE + 63_000)]
    consumer.batches = [{TP: [record(TP, 7 + i, v, b"AAPL") for i, v in enumerate(values)]}]
    await loop.step()
    bars = [orjson.loads(value or b"") for _, _, value in sent(producer, NAMES.ticks_bars)]
    assert [(b["tf"], b["ohlcv"]["high"]) for b in bars] == [("1m", 101.0)]
    proof = position(log, ("commit", {0: 7}))
    state_sent = position(log, ("send_batch", NAMES.ticks_state))
    assert last(log, "ack", NAMES.ticks_bars) < proof < state_sent
    assert last(log, "ack", NAMES.ticks_state) < position(log, ("commit", {0: 10}))
    states = {key for partition, key, _ in sent(producer, NAMES.ticks_state) if partition == 0}
    assert b"w|AAPL" in states, "the watermark is on the changelog, in the tick's partition"


async def test_a_poison_tick_is_dead_lettered_and_the_rest_folded_and_committed() -> None:
    log: Log = []
    loop, consumer, producer, runtime = await aggregator_loop(log)
    values = [tick(MINUTE + 1_000), b"{", tick(MINUTE + 2_000, price=-1.0),
              tick(MINUTE + 63_000)]  # fmt: skip
    consumer.batches = [{TP: [record(TP, i, v, b"AAPL") for i, v in enumerate(values)]}]
    await loop.step()
    assert [offset for offset, _ in runtime.dead] == [1, 2]
    assert [reason for _, reason in runtime.dead][0] == "invalid_json"
    assert sent(producer, NAMES.ticks_bars)
    assert consumer.committed_offsets[TP] == 4


async def test_a_revoked_partition_is_flushed_and_committed_then_let_go() -> None:
    log: Log = []
    loop, consumer, producer, _ = await aggregator_loop(log, checkpoint_every_s=60.0)
    consumer.batches = [{TP: [record(TP, 0, tick(MINUTE + 1_000), b"AAPL")]}]
    await loop.step()
    assert not [entry for entry in log if entry[0] == "commit"], "not due yet"
    await loop.on_partitions_revoked([TP])
    assert last(log, "ack", NAMES.ticks_state) < position(log, ("commit", {0: 1}))
    before = len(producer.sent) + len(producer.batches)
    consumer.batches = [{TP: [record(TP, 1, tick(MINUTE + 63_000), b"AAPL")]}]
    await loop.step()
    after = len(producer.sent) + len(producer.batches)
    assert after == before, "a partition let go is neither folded nor written"
