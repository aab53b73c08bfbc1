"""The sink's batch rules, against an in-memory store: what is written, left out, dead-lettered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg
import pytest
from aiokafka import TopicPartition

from chronox_stream.agents.sink import DECODED_CAPACITY, Mirror, SinkHandler
from chronox_stream.contracts import envelope as wire
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.sources import Source
from chronox_stream.runtime import retry
from chronox_stream.runtime.app import Consumed, Runtime
from chronox_stream.runtime.loop import Batch
from chronox_stream.sinks import decoded as decoded_module
from chronox_stream.sinks.base import BarSink, SinkRecord
from chronox_stream.sinks.decoded import DecodedEnvelopes
from chronox_stream.sinks.health import SinkHealth
from tests.unit.runtime.fakes import record

TP = TopicPartition("chronox.bars.1m", 0)
T0 = datetime(2024, 1, 16, 15, tzinfo=UTC)
REFUSED_VOLUME = 666.0  # the store refuses a bar with this volume, as PostgreSQL a value


def envelope(minute: int, volume: float = 10.0) -> bytes:
    bar = Bar(symbol="AAPL", tf="1m", ts=T0 + timedelta(minutes=minute),
              open=1, high=2, low=0.5, close=1, volume=volume)  # fmt: skip
    return wire.envelope(bar, "api")


class Store:
    """Keeps what it was given; refuses a batch holding the refused value; can be down."""

    def __init__(self) -> None:
        self.batches: list[list[SinkRecord]] = []
        self.down = 0

    async def store(self, batch: Sequence[SinkRecord]) -> None:
        if self.down:
            self.down -= 1
            raise ConnectionRefusedError("store down")
        if any(r.bar.volume == REFUSED_VOLUME for r in batch):
            raise asyncpg.exceptions.NumericValueOutOfRangeError("value out of range")
        self.batches.append(list(batch))

    @property
    def minutes(self) -> list[int]:
        return sorted(int((r.bar.ts - T0).total_seconds() // 60) for b in self.batches for r in b)


class FakeRuntime:
    def __init__(self) -> None:
        self.sink_health = SinkHealth()
        self.dead: list[tuple[int, Rejected]] = []

    async def dead_letter(self, message: Consumed, rejected: Rejected) -> None:
        self.dead.append((message.offset, rejected))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "LOOP_BACKOFF", retry.Backoff(initial_s=0.001, cap_s=0.001))


def handler_for(store: Store, *, judges: bool, decoded: DecodedEnvelopes | None = None
                ) -> tuple[SinkHandler, FakeRuntime]:  # fmt: skip
    async def connect(runtime: Runtime) -> BarSink:
        return store

    runtime = FakeRuntime()
    mirror = Mirror("postgres" if judges else "redis", "PostgreSQL" if judges else "Redis",
                    connect, judges=judges)  # fmt: skip
    return SinkHandler(cast(Runtime, runtime), mirror, decoded), runtime


def batch_of(values: list[bytes]) -> Batch:
    return {TP: [record(TP, offset, value) for offset, value in enumerate(values)]}


async def test_a_refused_batch_is_split_down_to_the_refused_envelope_which_is_dead_lettered_once(
) -> None:  # fmt: skip
    store = Store()
    handler, runtime = handler_for(store, judges=True)
    values = [envelope(m, REFUSED_VOLUME if m == 21 else 10.0) for m in range(50)]
    await handler.process(batch_of(values))
    assert store.minutes == [m for m in range(50) if m != 21]
    assert [(offset, r.reason) for offset, r in runtime.dead] == [(21, "invalid_envelope")]
    assert runtime.dead[0][1].message.startswith("PostgreSQL refused it:")


async def test_an_invalid_envelope_is_dead_lettered_by_postgres_and_left_out_by_redis() -> None:
    values = [envelope(0), b"{not json", envelope(1)]
    store = Store()
    handler, runtime = handler_for(store, judges=True)
    await handler.process(batch_of(values))
    assert [(offset, r.reason) for offset, r in runtime.dead] == [(1, "invalid_envelope")]
    assert store.minutes == [0, 1]
    store = Store()
    handler, runtime = handler_for(store, judges=False)
    await handler.process(batch_of(values))
    assert runtime.dead == [] and store.minutes == [0, 1]
    assert [r.payload for r in store.batches[0]] == [values[0], values[2]], "bytes as consumed"


async def test_a_store_that_is_down_is_retried_and_loses_nothing() -> None:
    for judges in (True, False):
        store = Store()
        store.down = 3
        handler, runtime = handler_for(store, judges=judges)
        await handler.process(batch_of([envelope(m) for m in range(5)]))
        assert len(store.batches) == 1 and store.minutes == [0, 1, 2, 3, 4]
        assert runtime.dead == [] and runtime.sink_health.state(store_name(judges)) == "ok"


def store_name(judges: bool) -> str:
    return "postgres" if judges else "redis"


async def test_redis_never_splits_nor_dead_letters_a_batch_it_fails_on() -> None:
    store = Store()
    handler, runtime = handler_for(store, judges=False)
    with pytest.raises(asyncpg.exceptions.NumericValueOutOfRangeError):
        await handler.process(batch_of([envelope(0), envelope(1, REFUSED_VOLUME)]))
    assert runtime.dead == [] and store.batches == []


async def test_the_two_sinks_of_a_worker_decode_each_envelope_once_and_keep_their_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decodes: list[bytes] = []
    real = decoded_module.decode_bar

    def counting(raw: bytes) -> tuple[Bar, Source]:
        decodes.append(raw)
        return real(raw)

    monkeypatch.setattr(decoded_module, "decode_bar", counting)
    shared = DecodedEnvelopes(DECODED_CAPACITY)
    postgres_store, redis_store = Store(), Store()
    postgres, postgres_runtime = handler_for(postgres_store, judges=True, decoded=shared)
    redis, redis_runtime = handler_for(redis_store, judges=False, decoded=shared)
    values = [envelope(0), b"{not json", envelope(1), b"", envelope(3)]
    await redis.process(batch_of(values))  # either sink may read a record first
    await postgres.process(batch_of(values))
    assert decodes == values, "each envelope decoded once"
    assert redis_store.minutes == [0, 1, 3] and redis_runtime.dead == []
    assert postgres_store.minutes == [0, 1, 3]
    assert [(offset, r.reason) for offset, r in postgres_runtime.dead] == [
        (1, "invalid_envelope"), (3, "invalid_envelope")]  # fmt: skip
    assert [r.payload for b in postgres_store.batches for r in b] == [
        values[0], values[2], values[4]], "bytes as consumed"  # fmt: skip
