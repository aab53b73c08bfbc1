"""The Emitter's order of effects: dedup marks only after Kafka acknowledged the bars."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chronox_stream.domain.bars import Bar, Source
from chronox_stream.domain.dedup import Bucket, admit_batch, bucket_key
from chronox_stream.runtime.emit import Emitter, LivePolicy
from tests.unit.runtime.fakes import FakeProducer, Log, last, position

T0 = datetime(2024, 1, 16, 15, tzinfo=UTC)


def bar(minute: int) -> Bar:
    return Bar(symbol="AAPL", tf="1m", ts=T0 + timedelta(minutes=minute),
               open=1, high=2, low=0.5, close=1, volume=10)  # fmt: skip


class Dedup:
    """An in-memory dedup table that logs when it records."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.buckets: dict[str, Bucket] = {}

    def current(self, keys: set[str]) -> dict[str, Bucket]:
        return {key: self.buckets.get(key, {}) for key in keys}

    def decide(self, bars: list[Bar], source: Source) -> tuple[list[Bar], dict[str, Bucket]]:
        return admit_batch(bars, source, self.current({bucket_key(b) for b in bars}))

    def record(self, buckets: dict[str, Bucket]) -> None:
        self.log.append(("record", len(buckets)))
        self.buckets.update(buckets)

    def purge(self) -> int:
        return 0


def emitter_for(log: Log, producer: FakeProducer, dedup: Dedup | None = None,
                **policy: Any) -> tuple[Emitter, Dedup]:  # fmt: skip
    async def send(tf: str, key: bytes, value: bytes) -> Any:
        return await producer.send(f"bars.{tf}", value, key=key)

    async def write_db(rows: Sequence[tuple[Bar, Source]]) -> None:
        log.append(("db", len(rows)))

    dedup = dedup or Dedup(log)
    return Emitter(LivePolicy(**policy), dedup=dedup, send=send, write_db=write_db), dedup


async def test_bars_are_marked_emitted_only_after_every_ack() -> None:
    log: Log = []
    producer = FakeProducer(log)
    emitter, _ = emitter_for(log, producer)
    assert await emitter.emit([bar(0), bar(1), bar(2)], "api") == 3
    assert log.count(("ack", "bars.1m")) == 3
    assert last(log, "ack", "bars.1m") < position(log, ("record", 1))
    assert await emitter.emit([bar(0), bar(1)], "api") == 0, "marked: not sent again"
    assert len(producer.sent) == 3


async def test_nothing_is_marked_when_a_send_fails() -> None:
    log: Log = []
    emitter, dedup = emitter_for(log, FakeProducer(log, fail_on=1))
    with pytest.raises(ConnectionError):
        await emitter.emit([bar(0), bar(1)], "api")
    assert not [entry for entry in log if entry[0] == "record"] and dedup.buckets == {}
    retried, _ = emitter_for(log, FakeProducer(log), dedup)
    assert await retried.emit([bar(0), bar(1)], "api") == 2, "both go again"


async def test_db_first_writes_the_database_before_anything_is_sent() -> None:
    log: Log = []
    emitter, _ = emitter_for(log, FakeProducer(log), publish_mode="db-first")
    await emitter.emit([bar(0), bar(1)], "flatpack")
    assert position(log, ("db", 2)) < position(log, ("send", "bars.1m"))
    assert last(log, "ack", "bars.1m") < position(log, ("record", 1))


async def test_a_dry_run_sends_writes_and_records_nothing_but_counts() -> None:
    log: Log = []
    producer = FakeProducer(log)
    emitter, dedup = emitter_for(log, producer, dry_run=True, publish_mode="db-first")
    assert await emitter.emit([bar(0), bar(1), bar(0)], "api") == 2
    assert log == [] and producer.sent == [] and dedup.buckets == {}
