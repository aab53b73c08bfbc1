"""The batch loop's order of effects and rebalance rule, against in-memory Kafka fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Any, cast

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.runtime import metrics, retry
from chronox_stream.runtime.loop import Batch, BatchLoop, deliver, isolate
from tests.unit.runtime.fakes import FakeConsumer, FakeProducer, Log, last, position, record

TP0 = TopicPartition("in", 0)
TP1 = TopicPartition("in", 1)


class Handler:
    """Produces one output per record to ``out``; its state is one changelog record per
    batch, written at ``flush``."""

    def __init__(self, log: Log, producer: FakeProducer, *, stateful: bool = True) -> None:
        self.log = log
        self.producer = producer
        self.stateful = stateful
        self.owned: set[TopicPartition] = set()
        self.dirty: set[int] = set()
        self.hold: asyncio.Event | None = None

    async def assigned(self, partitions: Collection[TopicPartition]) -> None:
        self.owned |= set(partitions)

    def released(self, partitions: Collection[TopicPartition]) -> None:
        self.log.append(("released", sorted(tp.partition for tp in partitions)))
        self.owned -= set(partitions)

    async def process(self, batch: Batch) -> None:
        self.log.append(("process", {tp.partition: len(rs) for tp, rs in batch.items()}))
        if self.hold is not None:
            await self.hold.wait()
        records = [r for rs in batch.values() for r in rs]
        await deliver(self.producer.send("out", r.value) for r in records)
        self.dirty |= {tp.partition for tp in batch}

    async def flush(self, partitions: Collection[TopicPartition]) -> None:
        self.log.append(("flush", sorted(tp.partition for tp in partitions)))
        mine = [tp.partition for tp in partitions if tp.partition in self.dirty]
        await deliver(self.producer.send("state", b"s", partition=p) for p in mine)
        self.dirty -= set(mine)


async def started(handler: Handler, consumer: FakeConsumer, **kwargs: Any) -> BatchLoop:
    loop = BatchLoop("test", cast(AIOKafkaConsumer, consumer), handler,
                     batch_size=100, within_ms=1, **kwargs)  # fmt: skip
    await loop.on_partitions_assigned([TP0, TP1])
    return loop


def batch(tp: TopicPartition, first: int, count: int) -> Batch:
    return {tp: [record(tp, first + i, b"v%d" % (first + i)) for i in range(count)]}


async def test_outputs_and_state_are_acknowledged_before_the_offsets_are_committed() -> None:
    log: Log = []
    consumer = FakeConsumer(log, {TP0, TP1})
    handler = Handler(log, FakeProducer(log))
    loop = await started(handler, consumer)
    consumer.batches = [batch(TP0, 5, 3)]
    await loop.step()
    # The proof: where the member stands, a quiet partition at its start (nothing committed).
    proof, commit = position(log, ("commit", {0: 5, 1: 0})), position(log, ("commit", {0: 8}))
    assert last(log, "ack", "out") < proof < position(log, ("send", "state"))
    assert last(log, "ack", "state") < commit
    assert consumer.committed_offsets == {TP0: 8, TP1: 0}


async def test_a_handler_without_state_commits_after_each_batch_and_proves_nothing() -> None:
    log: Log = []
    consumer = FakeConsumer(log, {TP0, TP1})
    loop = await started(Handler(log, FakeProducer(log), stateful=False), consumer)
    consumer.batches = [batch(TP0, 0, 2), batch(TP1, 0, 1)]
    await loop.step()
    await loop.step()
    commits = [what for kind, what in log if kind == "commit"]
    assert commits == [{0: 2}, {1: 1}]
    assert last(log, "ack", "out") < last(log, "commit")


async def test_state_and_offsets_wait_for_the_checkpoint_interval() -> None:
    log: Log = []
    now = [0.0]
    consumer = FakeConsumer(log, {TP0, TP1})
    loop = await started(Handler(log, FakeProducer(log)), consumer,
                         checkpoint_every_s=1.0, clock=lambda: now[0])  # fmt: skip
    consumer.batches = [batch(TP0, 0, 2), batch(TP0, 2, 2)]
    await loop.step()
    assert not [entry for entry in log if entry[0] in ("commit", "flush")]
    now[0] = 1.5
    await loop.step()
    assert ("commit", {0: 4}) in log and log.count(("send", "state")) == 1


async def test_nothing_is_committed_when_a_produce_fails() -> None:
    log: Log = []
    consumer = FakeConsumer(log, {TP0, TP1})
    loop = await started(Handler(log, FakeProducer(log, fail_on=1)), consumer)
    consumer.batches = [batch(TP0, 0, 3)]
    with pytest.raises(ConnectionError):
        await loop.step()
    assert consumer.committed_offsets == {}
    await loop.on_partitions_revoked([TP0, TP1])  # the consumer is rebuilt: still nothing
    assert consumer.committed_offsets == {}


async def test_a_batch_fetched_before_a_rebalance_is_dropped_and_read_again() -> None:
    log: Log = []
    consumer = FakeConsumer(log, {TP0, TP1})
    handler = Handler(log, FakeProducer(log))
    loop = await started(handler, consumer)
    consumer.committed_offsets = {TP0: 4}
    consumer.batches = [{**batch(TP0, 4, 2), **batch(TP1, 0, 2)}]

    async def rebalance() -> None:
        await loop.on_partitions_revoked([TP0, TP1])
        await loop.on_partitions_assigned([TP0, TP1])

    consumer.before_return = rebalance
    await loop.step()
    assert not [entry for entry in log if entry[0] == "process"]
    assert ("seek", (0, 4)) in log and ("seek", (1, 0)) in log  # committed, else the start
    consumer.batches = [batch(TP0, 4, 2)]
    await loop.step()
    assert consumer.committed_offsets[TP0] == 6


async def test_a_revocation_waits_for_the_batch_in_progress_then_checkpoints_and_releases(
) -> None:  # fmt: skip
    log: Log = []
    consumer = FakeConsumer(log, {TP0, TP1})
    handler = Handler(log, FakeProducer(log))
    loop = await started(handler, consumer, checkpoint_every_s=60.0)
    handler.hold = asyncio.Event()
    consumer.batches = [batch(TP0, 0, 3)]
    step = asyncio.create_task(loop.step())
    while ("process", {0: 3}) not in log:
        await asyncio.sleep(0)
    revoke = asyncio.create_task(loop.on_partitions_revoked([TP0, TP1]))
    await asyncio.sleep(0.01)
    assert not revoke.done(), "the revocation went ahead of the batch in progress"
    handler.hold.set()
    await step
    await revoke
    assert last(log, "ack", "out") < last(log, "ack", "state") < position(log, ("commit", {0: 3}))
    assert position(log, ("commit", {0: 3})) < position(log, ("released", [0, 1]))
    assert handler.owned == set()


async def test_a_member_the_group_moved_on_from_writes_no_state_and_lets_go() -> None:
    log: Log = []
    consumer = FakeConsumer(log, {TP0, TP1})
    handler = Handler(log, FakeProducer(log))
    loop = await started(handler, consumer)
    consumer.refuse_commits = True
    consumer.batches = [batch(TP0, 0, 3)]
    await loop.step()
    assert ("send", "state") not in log and not [e for e in log if e[0] == "flush"]
    assert handler.owned == set()
    consumer.batches = [batch(TP0, 3, 1)]
    await loop.step()
    assert log.count(("process", {0: 3})) == 1 and ("process", {0: 1}) not in log


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "LOOP_BACKOFF", retry.Backoff(initial_s=0.001, cap_s=0.001))


async def test_isolate_dead_letters_the_poison_and_writes_the_rest(no_backoff: None) -> None:
    written: list[int] = []
    rejected: list[tuple[int, str]] = []

    async def write(items: Sequence[int]) -> None:
        if 13 in items:
            raise ValueError("13 is refused")
        written.extend(items)

    async def reject(item: int, why: Rejected) -> None:
        rejected.append((item, why.reason))

    await isolate("test write", list(range(40)), write, reject)
    assert rejected == [(13, "unprocessable")]
    assert sorted(written) == [i for i in range(40) if i != 13]


async def test_isolate_retries_a_world_failure_and_loses_nothing(no_backoff: None) -> None:
    written: list[int] = []
    failures = [ConnectionError("down"), TimeoutError("slow")]

    async def write(items: Sequence[int]) -> None:
        if failures:
            raise failures.pop(0)
        written.extend(items)

    async def reject(item: int, why: Rejected) -> None:
        pytest.fail(f"{item} dead-lettered for a failure of the world: {why}")

    await isolate("test write", list(range(10)), write, reject)
    assert written == list(range(10)), "written once, whole, after the world recovered"


async def test_a_failed_restore_stops_the_loop_before_anything_is_processed() -> None:
    log: Log = []
    consumer = FakeConsumer(log, {TP0})
    handler = Handler(log, FakeProducer(log))

    async def unreachable(partitions: Collection[TopicPartition]) -> None:
        raise ConnectionError("changelog unreachable")

    handler.assigned = unreachable  # type: ignore[method-assign]
    loop = BatchLoop("test", cast(AIOKafkaConsumer, consumer), handler,
                     batch_size=100, within_ms=1)  # fmt: skip
    with pytest.raises(ConnectionError):
        await loop.on_partitions_assigned([TP0])
    consumer.batches = [batch(TP0, 0, 2)]
    with pytest.raises(ConnectionError):
        await loop.step()  # its supervisor builds a new consumer, which starts over
    assert log == [] and consumer.committed_offsets == {}


async def test_lag_is_the_highwater_less_the_next_record_to_process() -> None:
    log: Log = []
    consumer = FakeConsumer(log, {TP0, TP1})
    loop = await started(Handler(log, FakeProducer(log), stateful=False), consumer)
    consumer.highwaters = {TP0: 20, TP1: 4}
    assert loop.lag() is None, "no position known before a record is processed"
    consumer.batches = [batch(TP0, 5, 3)]
    await loop.step()
    assert loop.lag() == 20 - 8, "TP1: never read, its position unknown"
    consumer.batches = [batch(TP1, 0, 4)]
    await loop.step()
    assert loop.lag() == 12 + 0


async def test_a_running_loop_reports_its_group_lag_as_a_metric() -> None:
    log: Log = []
    consumer = FakeConsumer(log, {TP0, TP1})
    loop = await started(Handler(log, FakeProducer(log), stateful=False), consumer,
                         group="unit-loop")  # fmt: skip
    consumer.highwaters = {TP0: 9}
    consumer.batches = [batch(TP0, 0, 3)]
    await loop.step()
    polling = asyncio.Event()

    async def hold() -> None:  # the next poll waits for records that do not come
        polling.set()
        await asyncio.Event().wait()

    consumer.before_return = hold
    registry = metrics.worker_registry(faust.App("loop-unit", autodiscover=False))
    running = asyncio.ensure_future(loop.run())
    try:
        await polling.wait()
        assert registry.get_sample_value("chronox_consumer_lag", {"group": "unit-loop"}) == 6
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert registry.get_sample_value("chronox_consumer_lag", {"group": "unit-loop"}) is None
