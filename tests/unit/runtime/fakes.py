"""In-memory stand-ins for aiokafka's consumer and producer, writing one shared log.

They keep what the batch loop and its handlers do in order, so a test can assert the
order of effects (sent, acknowledged, committed) without a broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

Log = list[tuple[str, Any]]


def record(tp: TopicPartition, offset: int, value: bytes, key: bytes | None = None
           ) -> ConsumerRecord[bytes, bytes]:  # fmt: skip
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, key, value, None,
                          len(key or b""), len(value), [])  # fmt: skip


def acked_soon(log: Log, topic: str) -> asyncio.Future[None]:
    """A delivery future the broker acknowledges a moment later (logged as ``ack``)."""
    delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def ack() -> None:
        log.append(("ack", topic))
        delivery.set_result(None)

    asyncio.get_running_loop().call_later(0.001, ack)
    return delivery


class FakeProducer:
    """``send`` logs the record and returns its delivery, acknowledged a moment later
    (logged then): a caller that does not wait for acks commits before they show."""

    def __init__(self, log: Log, *, fail_on: int | None = None) -> None:
        self.log = log
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self._fail_on = fail_on

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None) -> asyncio.Future[None]:  # fmt: skip
        if self._fail_on is not None and len(self.sent) == self._fail_on:
            raise ConnectionError("broker unreachable")
        self.sent.append((topic, key, value, partition))
        self.log.append(("send", topic))
        return acked_soon(self.log, topic)


class FakeBatch:
    """An aiokafka ``BatchBuilder`` that holds at most ``capacity`` records."""

    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self.closed = False
        self._capacity = capacity

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None
               ) -> object | None:  # fmt: skip
        if self.closed or len(self.records) == self._capacity:
            self.closed = True
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


class FakeBatchProducer(FakeProducer):
    """A :class:`FakeProducer` with aiokafka's batch API: ``send_batch`` logs the batch
    and acknowledges it a moment later; it fails from the ``fail_on``-th batch on."""

    def __init__(self, log: Log, *, partitions: int = 4, capacity: int = 300,
                 fail_on: int | None = None) -> None:  # fmt: skip
        super().__init__(log)
        self.partitions = partitions
        self.capacity = capacity
        self.batches: list[tuple[str, int, FakeBatch]] = []
        self._fail_batch_on = fail_on

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int
                         ) -> asyncio.Future[None]:  # fmt: skip
        if self._fail_batch_on is not None and len(self.batches) >= self._fail_batch_on:
            raise ConnectionError("broker unreachable")
        assert batch.closed, "a batch is closed before it is sent"
        self.batches.append((topic, partition, batch))
        self.log.append(("send_batch", topic))
        return acked_soon(self.log, topic)


class FakeConsumer:
    """Hands out ``batches`` one per ``getmany`` (then empty ones); logs commits and seeks.

    ``before_return`` runs inside ``getmany`` after the batch is taken: a rebalance that
    happens while a batch is in flight. ``refuse_commits`` makes every commit fail as it
    does for a member the group has moved on from.
    """

    def __init__(self, log: Log, assignment: set[TopicPartition]) -> None:
        self.log = log
        self.batches: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]] = []
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.before_return: Callable[[], Awaitable[None]] | None = None
        self.refuse_commits = False
        self.highwaters: dict[TopicPartition, int] = {}  # as the last fetch reported them
        self._assignment = assignment

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None
                      ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:  # fmt: skip
        batch = self.batches.pop(0) if self.batches else {}
        if self.before_return is not None:
            hook, self.before_return = self.before_return, None
            await hook()
        return batch

    def assignment(self) -> set[TopicPartition]:
        return self._assignment

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if self.refuse_commits:
            raise CommitFailedError("the group has rebalanced")
        self.log.append(("commit", {tp.partition: at.offset for tp, at in offsets.items()}))
        self.committed_offsets.update({tp: at.offset for tp, at in offsets.items()})

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.log.append(("seek", (tp.partition, offset)))

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.log.append(("seek", (tp.partition, 0)))


def position(log: Log, entry: tuple[str, Any]) -> int:
    """Index of the first ``entry`` in ``log`` (fails the test when absent)."""
    assert entry in log, f"{entry} not in {log}"
    return log.index(entry)


def last(log: Log, kind: str, what: Any = None) -> int:
    """Index of the last entry of ``kind`` (and ``what``, when given)."""
    hits = [i for i, (k, w) in enumerate(log) if k == kind and (what is None or w == what)]
    assert hits, f"no {kind} {what} in {log}"
    return hits[-1]
