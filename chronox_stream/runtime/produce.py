"""Producing a chunk of keyed records as Kafka record batches, partitioned as one send each.

A producer ``send`` per record costs about 11 µs of Python (half of it hashing the key to
its partition), more than the rest of a backfilled bar's produce. A chunk of a backfill's
envelopes shares a handful of keys (one symbol per work item), so :func:`batch_sends`
hashes each key once, appends the records to one aiokafka batch per partition
(``create_batch`` / ``append``, a new batch when one is full) and submits each with
``send_batch``: about 1 µs a record.

The partition of a key is the producer's own partitioner applied to the topic's sorted
partitions, exactly as its per-record ``send`` does, so a symbol's bars land on the same
partition either way: the sinks and the dedup table's purge rely on symbol-keyed
partitions. Waiting for the acknowledgements stays with
:func:`~chronox_stream.runtime.loop.deliver`, which runs the sends this returns.
Records whose partition the caller picks (a changelog's: the partition of the state's
owner) are batched the same way by :func:`partition_sends`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError

#: ``partitioner(key, all_partitions, available_partitions) -> partition``, as aiokafka
#: and Faust call it (aiokafka's ``DefaultPartitioner``: murmur2 of the key, as the Java
#: client's default).
Partitioner = Callable[[bytes, Sequence[int], Sequence[int]], int]


class Batch(Protocol):
    """An aiokafka ``BatchBuilder``: ``append`` returns None once the batch is full."""

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None) -> Any: ...

    def close(self) -> None: ...


class BatchProducer(Protocol):
    """The part of aiokafka's ``AIOKafkaProducer`` that produces whole batches."""

    async def partitions_for(self, topic: str) -> set[int]: ...

    def create_batch(self) -> Batch: ...

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> Awaitable[Any]: ...


def partition_for(partitioner: Partitioner, key: bytes, partitions: Sequence[int]) -> int:
    """The partition a keyed ``send`` picks: a keyed record's partition depends on the key
    and the topic's partitions only (``available`` matters only for records without a key)."""
    return partitioner(key, partitions, partitions)


def batched(
    producer: BatchProducer,
    partitioner: Partitioner,
    partitions: Sequence[int],
    records: Sequence[tuple[bytes, bytes]],
) -> list[tuple[int, Batch]]:
    """``records`` (key, value) appended in order to closed batches, with their partition:
    one batch per partition, and another whenever one is full."""
    of_key: dict[bytes, int] = {}
    placed: list[tuple[int, bytes, bytes | None]] = []
    for key, value in records:
        partition = of_key.get(key)
        if partition is None:
            partition = of_key[key] = partition_for(partitioner, key, partitions)
        placed.append((partition, key, value))
    return batched_to(producer, placed)


def batched_to(
    producer: BatchProducer, records: Sequence[tuple[int, bytes | None, bytes | None]]
) -> list[tuple[int, Batch]]:
    """``records`` (partition, key, value; a ``None`` value is a tombstone) appended in
    order to closed batches of their partition, another whenever one is full."""
    open_batches: dict[int, Batch] = {}
    out: list[tuple[int, Batch]] = []
    for partition, key, value in records:
        batch = open_batches.get(partition)
        if batch is None or batch.append(timestamp=None, key=key, value=value) is None:
            batch = open_batches[partition] = producer.create_batch()
            if batch.append(timestamp=None, key=key, value=value) is None:
                size = len(value or b"")
                raise MessageSizeTooLargeError(f"a record of {size} bytes fits no batch")
            out.append((partition, batch))
    for _, batch in out:
        batch.close()  # sent at once, without lingering for records that will not come
    return out


async def batch_sends(
    producer: BatchProducer,
    partitioner: Partitioner,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
) -> Iterator[Awaitable[Awaitable[Any]]]:
    """The sends of ``records`` to ``topic`` as batches, for
    :func:`~chronox_stream.runtime.loop.deliver` to run: each returns its batch's delivery.
    Nothing is sent until they are run, one by one."""
    partitions = sorted(await producer.partitions_for(topic))
    batches = batched(producer, partitioner, partitions, records)
    return (producer.send_batch(batch, topic, partition=p) for p, batch in batches)


def partition_sends(
    producer: BatchProducer, topic: str, records: Sequence[tuple[int, bytes | None, bytes | None]]
) -> Iterator[Awaitable[Awaitable[Any]]]:
    """The sends of ``records`` (partition, key, value) to ``topic`` as batches, for
    :func:`~chronox_stream.runtime.loop.deliver` to run: records whose partition is
    chosen by the caller (a changelog's, the partition of the state's owner)."""
    batches = batched_to(producer, records)
    return (producer.send_batch(batch, topic, partition=p) for p, batch in batches)
