"""Both stores take a batch of envelopes through the one sink interface."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from chronox_stream.contracts.envelope import envelope
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.sources import Source
from chronox_stream.sinks.base import BarSink, SinkRecord
from chronox_stream.sinks.postgres import PostgresSink
from chronox_stream.sinks.redis import RedisSink

BAR = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 16, 15, tzinfo=UTC),
          open=1, high=2, low=0.5, close=1, volume=10)  # fmt: skip
RECORD = SinkRecord(BAR, "api", envelope(BAR, "api"))


class Postgres(PostgresSink):
    def __init__(self) -> None:
        self.rows: list[tuple[Bar, Source]] = []

    async def write(self, items: Sequence[tuple[Bar, Source]]) -> int:
        self.rows.extend(items)
        return len(items)


class Redis(RedisSink):
    def __init__(self) -> None:
        self.published: list[tuple[Bar, bytes]] = []

    async def publish(self, bars: Sequence[tuple[Bar, bytes]]) -> None:
        self.published.extend(bars)


async def test_postgres_stores_each_bar_with_its_source() -> None:
    sink = Postgres()
    store: BarSink = sink
    await store.store([RECORD])
    assert sink.rows == [(BAR, "api")]


async def test_redis_publishes_each_envelope_as_consumed() -> None:
    sink = Redis()
    store: BarSink = sink
    await store.store([RECORD])
    assert sink.published == [(BAR, RECORD.payload)]

