"""The Emitter's order of effects: dedup marks only after Kafka acknowledged the bars."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from chronox_stream.contracts.envelope import decode_bar, envelope
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.dedup import Bucket, admit_batch, bucket_key
from chronox_stream.domain.sources import Source
from chronox_stream.runtime.emit import CHUNK, Emitter, LivePolicy
from chronox_stream.runtime.produce import batch_sends
from tests.unit.runtime.fakes import FakeBatchProducer, FakeProducer, Log, last, position

T0 = datetime(2024, 1, 16, 15, tzinfo=UTC)


def bar(minute: int, symbol: str = "AAPL") -> Bar:
    return Bar(symbol=symbol, tf="1m", ts=T0 + timedelta(minutes=minute),
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

    async def send_batches(tf: str, records: Sequence[tuple[bytes, bytes]]
                           ) -> Iterable[Any]:  # fmt: skip
        assert isinstance(producer, FakeBatchProducer)
        return await batch_sends(producer, DefaultPartitioner(), f"bars.{tf}", records)

    async def reject(bar: Bar, source: Source, rejected: Rejected) -> None:
        log.append(("reject", (bar, source, rejected.reason, rejected.message)))

    def seed(source: Source, bars: Sequence[Bar], payloads: Sequence[bytes]) -> None:
        log.append(("seed", (source, list(bars), list(payloads))))

    dedup = dedup or Dedup(log)
    batches = send_batches if isinstance(producer, FakeBatchProducer) else None
    return Emitter(LivePolicy(**policy), dedup=dedup, send=send, write_db=write_db,
                   reject=reject, send_batches=batches, seed=seed), dedup  # fmt: skip


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


@pytest.mark.parametrize("batched", [False, True])
async def test_a_bar_the_sinks_would_refuse_is_dead_lettered_not_sent(batched: bool) -> None:
    log: Log = []
    producer = FakeBatchProducer(log) if batched else FakeProducer(log)
    emitter, _ = emitter_for(log, producer)
    bad = [replace(bar(1), high=2e7), replace(bar(2), volume=float("nan")),
           replace(bar(3), ts=datetime(2101, 1, 1, tzinfo=UTC)), replace(bar(4), symbol="aapl")]
    assert await emitter.emit([bar(0), *bad, bar(5)], "api") == 2
    rejects = [entry for kind, entry in log if kind == "reject"]
    assert [(b, source, reason) for b, source, reason, _ in rejects] == [
        (b, "api", "invalid_envelope") for b in bad
    ]
    for b, _, _, message in rejects:  # the reason a sink would give for its envelope
        with pytest.raises(Rejected) as refused:
            decode_bar(envelope(b, "api"))
        assert refused.value.message == message
    values = [value for _, _, value, _ in producer.sent]
    if isinstance(producer, FakeBatchProducer):
        values += [value for _, _, batch in producer.batches for _, value in batch.records]
    assert [decode_bar(v)[0] for v in values] == [bar(0), bar(5)]


async def test_the_envelopes_are_seeded_before_they_are_sent_as_they_are_sent() -> None:
    log: Log = []
    producer = FakeBatchProducer(log)
    emitter, _ = emitter_for(log, producer)
    bars = [bar(m, symbol) for symbol in ("AAPL", "MSFT") for m in range(3)]
    await emitter.emit(bars, "flatpack")
    (seeded,) = [entry for kind, entry in log if kind == "seed"]
    assert position(log, ("seed", seeded)) < position(log, ("send_batch", "bars.1m"))
    source, seeded_bars, payloads = seeded
    sent = [value for _, _, batch in producer.batches for _, value in batch.records]
    assert (source, seeded_bars) == ("flatpack", bars) and payloads == sent
    assert [decode_bar(p) for p in payloads] == [(b, "flatpack") for b in bars]


async def test_a_chunk_goes_out_as_batches_and_is_marked_after_their_acks() -> None:
    log: Log = []
    producer = FakeBatchProducer(log, capacity=300)
    emitter, _ = emitter_for(log, producer)
    bars = [bar(m, symbol) for symbol in ("AAPL", "MSFT") for m in range(CHUNK // 2 + 100)]
    assert await emitter.emit(bars, "flatpack") == len(bars)
    assert producer.sent == [], "no send per bar"
    assert len(producer.batches) < len(bars) // 100
    records = [i for i, (kind, _) in enumerate(log) if kind == "record"]
    assert len(records) == 2, "one record per chunk"
    for at in records:
        before = [kind for kind, _ in log[:at]]
        assert before.count("ack") == before.count("send_batch"), "recorded after every ack"
    sent = [value for _, _, batch in producer.batches for _, value in batch.records]
    assert sent == [envelope(b, "flatpack") for b in bars], "every bar, in order"
    by_symbol: dict[bytes | None, set[int]] = {}
    for _, partition, batch in producer.batches:
        for key, _ in batch.records:
            by_symbol.setdefault(key, set()).add(partition)
    assert by_symbol.keys() == {b"AAPL", b"MSFT"} and all(len(p) == 1 for p in by_symbol.values())
    assert await emitter.emit(bars[:10], "flatpack") == 0, "marked: not sent again"


async def test_nothing_of_a_chunk_is_marked_when_a_batch_send_fails() -> None:
    log: Log = []
    emitter, dedup = emitter_for(log, FakeBatchProducer(log, capacity=2, fail_on=1))
    with pytest.raises(ConnectionError):
        await emitter.emit([bar(0), bar(1), bar(2)], "api")
    assert not [entry for entry in log if entry[0] == "record"] and dedup.buckets == {}
    retried, _ = emitter_for(log, FakeBatchProducer(log), dedup)
    assert await retried.emit([bar(0), bar(1), bar(2)], "api") == 3, "all go again"


async def test_a_throttled_policy_sends_bar_by_bar_spaced_out() -> None:
    log: Log = []
    producer = FakeBatchProducer(log)
    emitter, _ = emitter_for(log, producer, throttle_ms=5)
    started = time.monotonic()
    assert await emitter.emit([bar(0), bar(1), bar(2)], "api") == 3
    assert time.monotonic() - started >= 0.01, "two gaps of 5 ms at least"
    assert producer.batches == [] and len(producer.sent) == 3
    assert last(log, "ack", "bars.1m") < last(log, "record")


async def test_every_chunk_of_an_emit_is_sent_before_one_wait_for_the_acks() -> None:
    log: Log = []
    producer = FakeBatchProducer(log, capacity=300)
    emitter, _ = emitter_for(log, producer)
    bars = [bar(m) for m in range(2 * CHUNK + 10)]
    repeated = replace(bars[5], vwap=1.5)  # an enrichment of a bar of the first chunk
    assert await emitter.emit([*bars, bars[7], repeated], "flatpack") == len(bars) + 1, (
        "a bar of a later chunk is judged against the earlier chunks"
    )
    kinds = [kind for kind, _ in log]
    assert kinds.index("ack") > max(i for i, k in enumerate(kinds) if k == "send_batch")
    assert kinds.index("record") > max(i for i, k in enumerate(kinds) if k == "ack")
    assert kinds.count("record") == 3, "each chunk's state, once every ack is in"
    assert await emitter.emit(bars[:10], "flatpack") == 0, "marked: not sent again"


async def test_nothing_of_an_emit_is_marked_when_a_later_chunk_fails() -> None:
    log: Log = []
    producer = FakeBatchProducer(log, capacity=CHUNK, fail_on=1)
    emitter, dedup = emitter_for(log, producer)
    bars = [bar(m) for m in range(CHUNK + 10)]
    with pytest.raises(ConnectionError):
        await emitter.emit(bars, "api")
    assert not [entry for entry in log if entry[0] == "record"] and dedup.buckets == {}
    retried, _ = emitter_for(log, FakeBatchProducer(log), dedup)
    assert await retried.emit(bars, "api") == len(bars), "all go again"
