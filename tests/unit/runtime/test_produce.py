"""A chunk produced as record batches lands where one send per record would put it."""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from chronox_stream.runtime.loop import deliver
from chronox_stream.runtime.produce import batch_sends, batched, partition_sends
from tests.unit.runtime.fakes import FakeBatchProducer, Log, last

#: murmur2 of keys, from the Java client's own test (Kafka's UtilsTest.testMurmur2).
JAVA_MURMUR2 = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
                b"a-little-bit-longer-string": -1486304829, b"abc": 479470107,
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}  # fmt: skip
PARTITION_COUNTS = (1, 2, 3, 4, 5, 7, 8, 12, 16, 24, 32, 50, 64, 100)


def symbols() -> list[bytes]:
    """Two thousand ticker-shaped keys, one to five letters, some with a class suffix."""
    letters = string.ascii_uppercase
    short = ["".join(p) for n in (1, 2, 3) for p in itertools.product(letters[:13], repeat=n)]
    classes = [f"{s}.{c}" for s in ("BRK", "BF", "HEI", "LEN") for c in "AB"]
    long = ["".join(p) for p in itertools.product("XYZQW", repeat=5)][:1000]
    return [s.encode() for s in [*short[:992], *classes, *long]]


class Metadata:
    """The cluster metadata an aiokafka producer reads its topic's partitions from."""

    def __init__(self, n: int) -> None:
        self.n = n

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


def partitions_of(batches: Sequence[tuple[int, Any]]) -> dict[bytes, set[int]]:
    placed: dict[bytes, set[int]] = {}
    for partition, batch in batches:
        for key, _ in batch.records:
            placed.setdefault(key, set()).add(partition)
    return placed


async def test_every_key_lands_on_the_partition_a_single_send_would_pick() -> None:
    keys = symbols()
    single = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")  # never started: no broker
    try:
        for n in PARTITION_COUNTS:
            single._metadata = Metadata(n)  # what its per-record send partitions by
            batches = batched(FakeBatchProducer([], partitions=n, capacity=10_000),
                              DefaultPartitioner(), list(range(n)), [(k, b"v") for k in keys])
            placed = partitions_of(batches)
            for key in keys:
                assert placed[key] == {single._partition("t", None, key, b"v", key, b"v")}
            assert len(batches) == len({p for p, _ in batches}), "one batch per partition"
    finally:
        await single.stop()


def test_the_partition_is_the_java_clients_default_for_a_key() -> None:
    for key, hashed in JAVA_MURMUR2.items():
        for n in PARTITION_COUNTS:
            [(partition, _)] = batched(FakeBatchProducer([], partitions=n), DefaultPartitioner(),
                                       list(range(n)), [(key, b"v")])  # fmt: skip
            assert partition == (hashed & 0x7FFFFFFF) % n


def test_a_full_batch_is_followed_by_another_and_order_is_kept() -> None:
    records = [(b"AAPL", str(i).encode()) for i in range(25)]
    batches = batched(FakeBatchProducer([], capacity=10), DefaultPartitioner(), [0, 1, 2, 3],
                      records)  # fmt: skip
    assert [len(batch.records) for _, batch in batches] == [10, 10, 5]
    assert len({p for p, _ in batches}) == 1
    assert [r for _, batch in batches for r in batch.records] == records
    assert all(batch.closed for _, batch in batches)


async def test_batches_are_sent_only_when_delivered_and_every_ack_is_awaited() -> None:
    log: Log = []
    producer = FakeBatchProducer(log, capacity=4)
    records = [(s, b"v") for s in (b"AAPL", b"MSFT") for _ in range(6)]
    sends = await batch_sends(producer, DefaultPartitioner(), "bars", records)
    assert producer.batches == [], "nothing goes out before deliver runs the sends"
    assert await deliver(sends) == 4
    assert log.count(("ack", "bars")) == 4 and last(log, "ack") == len(log) - 1
    assert sorted(r for _, _, b in producer.batches for r in b.records) == sorted(records)


async def test_records_with_their_own_partition_go_there_in_order_tombstones_too() -> None:
    log: Log = []
    producer = FakeBatchProducer(log, capacity=3)
    records = [(i % 2, f"k{i % 4}".encode(), None if i == 5 else str(i).encode())
               for i in range(8)]  # fmt: skip
    sends = partition_sends(producer, "state", records)
    assert producer.batches == [], "nothing goes out before deliver runs the sends"
    assert await deliver(sends) == 4
    for partition in (0, 1):
        sent = [r for _, p, batch in producer.batches if p == partition for r in batch.records]
        assert sent == [(key, value) for p, key, value in records if p == partition]
    assert log.count(("ack", "state")) == 4 and last(log, "ack") == len(log) - 1
