"""Sinks: mirror the bar topics to PostgreSQL and to Redis, each on its own.

Each sink runs in every worker as an app task around a plain aiokafka consumer in a
consumer group of its own (``<app id>-sink-postgres``, ``<app id>-sink-redis``), so N
workers share the bar partitions, and the two sinks never wait for each other: while
Redis is down PostgreSQL keeps up, and the reverse; the sink whose store is down keeps
its offsets where they are and catches up when the store is back. Not Faust agents: a
Faust stream hands an agent one event at a time, at about 3,500 envelopes/s here, while
``getmany`` hands over whole batches.

A rebalance waits for the batch in progress (``BatchFence``), so a partition's writes
never interleave with its next owner's. A batch's offsets are committed only after its
write succeeded. A write that fails because the store is unreachable is retried with
capped exponential backoff, never skipped (meanwhile ``/ready`` names the sink); one that
PostgreSQL refuses for a value is split until the envelope at fault is found, which is
dead-lettered while the rest is written. Replaying a batch after a crash or a rebalance
changes nothing: both writes are idempotent.

An envelope that is not valid v1 is dead-lettered once, by the PostgreSQL sink (reason
``invalid_envelope``); the Redis sink leaves it out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeAlias

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from chronox_stream.contracts.envelope import decode_bar
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar, Source
from chronox_stream.runtime.app import Runtime
from chronox_stream.runtime.failures import rejection_for
from chronox_stream.runtime.names import sink_group
from chronox_stream.runtime.retry import until_done, until_world_recovers
from chronox_stream.runtime.topics import BatchFence, group_consumer

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
BATCH_WITHIN_MS = 200

Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Item:
    """One envelope of a batch: where it came from and the bar it carries."""

    record: Record
    bar: Bar
    source: Source


Write: TypeAlias = Callable[[Runtime, list[Item]], Awaitable[None]]


async def write_postgres(runtime: Runtime, items: list[Item]) -> None:
    """Upsert ``items``; a batch refused for its values is split until the refused envelope
    is found and dead-lettered (a one-bar batch the database refuses is the bar's fault)."""

    async def upsert() -> None:
        await (await runtime.postgres()).write([(item.bar, item.source) for item in items])

    try:
        await until_world_recovers("postgres write",
                                   partial(runtime.sink_health.watch, "postgres", upsert))
    except Exception as refused:
        if len(items) == 1:
            rejected = rejection_for(refused)
            await runtime.dead_letter(
                items[0].record,
                Rejected("invalid_envelope", f"PostgreSQL refused it: {rejected.message}"),
            )
            return
        half = len(items) // 2
        await write_postgres(runtime, items[:half])
        await write_postgres(runtime, items[half:])


async def write_redis(runtime: Runtime, items: list[Item]) -> None:
    """Publish every envelope (its bytes as consumed) and move the latest bars forward."""

    async def publish() -> None:
        await runtime.redis().publish([(item.bar, item.record.value) for item in items])

    await until_world_recovers("redis write", partial(runtime.sink_health.watch, "redis", publish))


@dataclass(frozen=True, slots=True)
class Sink:
    """One store the bar topics are mirrored to, with the consumer group it commits in."""

    name: str
    write: Write
    dead_letters: bool

    async def handle(self, runtime: Runtime, records: list[Record]) -> None:
        """Decode (dead-letter or leave out what is not an envelope), then write the rest."""
        items: list[Item] = []
        for record in records:
            try:
                bar, source = decode_bar(record.value or b"")
            except Rejected as rejected:
                if self.dead_letters:
                    await runtime.dead_letter(record, rejected)
                continue
            items.append(Item(record, bar, source))
        if items:
            started = time.monotonic()
            await self.write(runtime, items)
            elapsed = round(time.monotonic() - started, 3)
            log.debug("%s batch written", self.name,
                      extra={"count": len(items), "elapsed_s": elapsed})  # fmt: skip


SINKS = (
    Sink("postgres", write_postgres, dead_letters=True),
    Sink("redis", write_redis, dead_letters=False),
)


def next_offsets(
    batch: dict[TopicPartition, list[Record]],
) -> dict[TopicPartition, OffsetAndMetadata]:
    """What to commit after ``batch``: one past the last record of each partition."""
    return {tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items()}


async def consume_bars(runtime: Runtime, sink: Sink) -> None:
    """One consumer's life: batches in, writes out, offsets committed after the writes."""
    consumer = group_consumer(runtime.settings, sink_group(sink.name))
    fence = BatchFence()
    consumer.subscribe(runtime.topics.bar_names, listener=fence)
    await consumer.start()
    try:
        while True:
            generation = fence.generation
            batch = await consumer.getmany(timeout_ms=BATCH_WITHIN_MS, max_records=BATCH_SIZE)
            if not batch:
                continue
            async with fence.lock:
                if fence.generation != generation:
                    await fence.rewind(consumer, batch)
                    continue
                await sink.handle(runtime, [r for records in batch.values() for r in records])
                try:
                    await consumer.commit(next_offsets(batch))
                except (CommitFailedError, IllegalStateError) as lost:
                    # The group moved on (a member timed out): the new owner replays the
                    # batch, which the idempotent writes absorb.
                    log.info("%s sink commit skipped after a rebalance: %s", sink.name, lost)
    finally:
        await consumer.stop()


def mirror(runtime: Runtime, sink: Sink) -> Callable[[], Awaitable[None]]:
    """The app task of ``sink``: a broken consumer is rebuilt with backoff, and its group's
    offsets say where to resume."""

    async def run() -> None:
        await until_done(f"{sink.name} sink consumer", partial(consume_bars, runtime, sink))

    run.__qualname__ = f"sink_{sink.name}"
    return run


def attach(runtime: Runtime) -> None:
    for sink in SINKS:
        runtime.app.task(mirror(runtime, sink))
