"""The one consume -> process -> produce -> checkpoint loop of the aiokafka batch consumers.

The tick aggregator and both sinks read Kafka in batches outside Faust's streams (a Faust
stream hands over one event at a time, a tenth of what ``getmany`` does). Each is a
:class:`Handler` run by a :class:`BatchLoop`, which alone owns the order of effects:

1. poll a batch of records (``getmany``);
2. drop it if a rebalance happened since it was fetched: its partitions may be someone
   else's now, and those still ours are rewound to their committed offsets and read again;
3. ``process``: the handler decodes and validates each record (a record it refuses is
   dead-lettered with its reason and the batch goes on), processes the rest, produces its
   output records and waits until Kafka acknowledged every one (:func:`deliver`), or
   writes them to its store;
4. when a checkpoint is due (after every batch, or every ``checkpoint_every_s``):
   a. a handler with state first proves it still owns its partitions, by committing
      offsets it already stands at: Kafka refuses that from a member the group moved on
      from (a zombie), which must not overwrite what the new owner restored;
   b. ``flush``: the handler writes its state changes (changelog records) of the proven
      partitions and waits for the acknowledgements;
   c. the offsets of the records processed are committed.

So a committed offset always has its outputs acknowledged and its state written before it,
and a crash anywhere replays from the last commit: at least once, made exact downstream by
dedup and idempotent sinks.

**The rebalance rule.** A rebalance waits for the batch in progress (one lock). Revocation
checkpoints (4a-c) and then releases the revoked partitions whatever happens: a partition
kept after a failed flush would be written later, over its new owner's. Assignment hands
the new partitions to the handler (which restores their state) before their first batch.
A batch fetched before either is dropped (step 2).

**Failures.** A failure of the world (Kafka, PostgreSQL, Redis unreachable) is retried with
backoff inside the handler's step (:func:`~chronox_stream.runtime.retry.until_world_recovers`),
with the offsets where they are: nothing is lost. A failure of a record is isolated:
:func:`isolate` splits a refused batch until the record at fault is found, dead-letters it
and writes the rest. Anything else stops the loop before it commits; its supervisor
(:func:`~chronox_stream.runtime.retry.until_done`) builds a new consumer, which resumes
from the committed offsets.

The Faust agents keep Faust's own loop, but produce through :func:`deliver` too: the stream
bars agent's :class:`~chronox_stream.runtime.emit.Emitter` records bars as emitted only
after it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from functools import partial
from typing import Any, Protocol, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.runtime import metrics
from chronox_stream.runtime.retry import settle, until_world_recovers

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Batch: TypeAlias = dict[TopicPartition, list[Record]]
T = TypeVar("T")


async def deliver(sends: Iterable[Awaitable[Awaitable[Any]]]) -> int:
    """Produce, then wait until Kafka acknowledged every record; return how many sends.

    ``sends`` yields one producer send per record, or per record batch
    (:func:`~chronox_stream.runtime.produce.batch_sends`), each returning its delivery
    future, run in order. Whatever a caller marks (dedup state) or commits (offsets) for
    these records comes after this returns: a crash can repeat a record, never mark one
    that is not on its topic. If a send fails, this raises and nothing may be marked.
    """
    deliveries = [await send for send in sends]
    for delivery in deliveries:  # cheaper than gather: acks come in order, mostly all done
        await delivery
    return len(deliveries)


async def isolate(
    what: str,
    items: Sequence[T],
    write: Callable[[Sequence[T]], Awaitable[Any]],
    reject: Callable[[T, Rejected], Awaitable[None]],
) -> None:
    """Write ``items`` together; if that fails for a reason of the records, not the
    world's, split the batch in halves until the record at fault is found, ``reject`` it
    (dead-letter it with the reason) and write the rest. A world failure is retried with
    backoff at every size, so nothing is lost."""
    if len(items) == 1:
        await settle(what, partial(write, items), partial(reject, items[0]))
        return
    try:
        await until_world_recovers(what, partial(write, items))
    except Exception:  # one of them is at fault: find it
        half = len(items) // 2
        await isolate(what, items[:half], write, reject)
        await isolate(what, items[half:], write, reject)


class Handler(Protocol):
    """What a batch consumer does with its records; the :class:`BatchLoop` says when."""

    @property
    def stateful(self) -> bool:
        """Whether the handler keeps state on a changelog (then ownership is proven first)."""
        ...

    async def assigned(self, partitions: Collection[TopicPartition]) -> None:
        """Take new partitions: restore their state, before their first batch."""

    async def process(self, batch: Batch) -> None:
        """Decode (dead-lettering what is refused), process, produce outputs and wait for
        their acks (or write them to the store). Raises only when the loop must stop.
        Called after every poll, with an empty batch too: work due by the clock (live
        bars) does not wait for the next record."""

    async def flush(self, partitions: Collection[TopicPartition]) -> None:
        """Write the state changes of ``partitions`` (proven ours) and wait for the acks."""

    def released(self, partitions: Collection[TopicPartition]) -> None:
        """Forget ``partitions``: revoked, or lost to another member."""


class BatchLoop(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs one :class:`Handler` over one subscribed consumer, in the order of the module
    docstring. Subscribe the consumer with this object as its rebalance listener."""

    def __init__(
        self,
        name: str,
        consumer: AIOKafkaConsumer,
        handler: Handler,
        *,
        batch_size: int,
        within_ms: int,
        checkpoint_every_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        group: str = "",
    ) -> None:
        self._name = name
        self._group = group
        self._consumer = consumer
        self._handler = handler
        self._batch_size = batch_size
        self._within_ms = within_ms
        self._every_s = checkpoint_every_s
        self._clock = clock
        self._lock = asyncio.Lock()  # a rebalance waits for the batch in progress
        self._generation = 0  # moves at every revocation: batches fetched before are dropped
        self._owned: set[TopicPartition] = set()
        self._pending: dict[TopicPartition, OffsetAndMetadata] = {}  # to commit next
        # Per partition read since assignment: an offset this member may commit again at no
        # cost (its last commit, else its first record), which proves it still owns it.
        self._standing: dict[TopicPartition, OffsetAndMetadata] = {}
        self._checkpointed_at = clock()
        self._failed: BaseException | None = None

    async def run(self) -> None:
        """Poll, process and checkpoint until cancelled or a step fails; meanwhile
        :meth:`lag` is the worker's lag metric of ``group`` (else of the loop's name)."""
        with metrics.lag_probe(self._group or self._name, self.lag):
            while True:
                await self.step()

    def lag(self) -> int | None:
        """Records not processed yet in the owned partitions this loop knows a position in
        (read from since assignment, or proven): the consumer's last fetched end offset
        (highwater) less the offset after the last record processed."""
        assignment = self._consumer.assignment()
        owned = [tp for tp in self._owned if tp in assignment]
        ends = {tp: self._consumer.highwater(tp) for tp in owned}
        positions = {tp: at.offset for tp, at in self._standing.items()}
        positions.update((tp, at.offset) for tp, at in self._pending.items())
        return metrics.lag(ends, positions)

    async def step(self) -> None:
        """One batch (maybe empty) through steps 1 to 4 of the module docstring."""
        if self._failed is not None:
            raise self._failed
        generation = self._generation
        batch = await self._consumer.getmany(timeout_ms=self._within_ms,
                                             max_records=self._batch_size)  # fmt: skip
        async with self._lock:
            if self._generation != generation:
                await self._rewind(batch)
                return
            mine = {tp: records for tp, records in batch.items() if records and tp in self._owned}
            await self._handler.process(mine)
            for tp, records in mine.items():
                self._standing.setdefault(tp, OffsetAndMetadata(records[0].offset, ""))
                self._pending[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
            if self._clock() - self._checkpointed_at >= self._every_s:
                if self._handler.stateful:
                    await self._stand_quiet()
                await self._checkpoint()

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            try:
                await self._checkpoint()
            finally:
                self._forget(set(revoked))

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        async with self._lock:
            fresh = [tp for tp in assigned if tp not in self._owned]
            try:
                await self._handler.assigned(fresh)
            except Exception as failure:  # the loop stops, and a new consumer starts over
                self._failed = failure
                raise
            self._owned.update(fresh)

    async def _checkpoint(self) -> None:
        owned = sorted(self._owned)
        proven = owned
        if self._handler.stateful:
            proven = [tp for tp in owned if tp in self._standing]
            if proven and not await self._commit({tp: self._standing[tp] for tp in proven}):
                log.warning("%s: partitions taken over before their state was written; "
                            "their new owner replays them", self._name)  # fmt: skip
                self._forget(set(owned))
                return
        await self._handler.flush(proven)
        self._checkpointed_at = self._clock()
        offsets, self._pending = self._pending, {}
        if offsets and await self._commit(offsets):
            self._standing.update(offsets)

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        """Commit; False when the group moved on (the partitions' new owner replays them)."""
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as lost:
            log.info("%s: commit refused after a rebalance: %s", self._name, lost)
            return False
        return True

    def _forget(self, partitions: set[TopicPartition]) -> None:
        self._handler.released(partitions)
        self._owned -= partitions
        for tp in partitions:
            self._standing.pop(tp, None)
            self._pending.pop(tp, None)

    async def _stand_quiet(self) -> None:
        """Look up where owned partitions no record was read from since assignment stand:
        their committed offset (their start when none), once per assignment. Not inside a
        revocation: such a partition's state is then left to its next owner."""
        assignment = self._consumer.assignment()
        for tp in sorted(self._owned):
            if tp in self._standing or tp not in assignment:
                continue
            committed = await self._consumer.committed(tp)
            if committed is None:
                committed = (await self._consumer.beginning_offsets([tp]))[tp]
            self._standing[tp] = OffsetAndMetadata(committed, "")

    async def _rewind(self, dropped: Iterable[TopicPartition]) -> None:
        """Read the partitions of a dropped batch that are still ours again from their
        committed offsets: the consumer's position is already past the batch."""
        assignment = self._consumer.assignment()
        for tp in dropped:
            if tp in assignment:
                committed = await self._consumer.committed(tp)
                if committed is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
