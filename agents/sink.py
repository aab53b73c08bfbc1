"""Sinks: mirror the bar topics to PostgreSQL and to Redis, each on its own.

Each sink runs in every worker as an app task around a plain aiokafka consumer in a
consumer group of its own (``<app id>-sink-postgres``, ``<app id>-sink-redis``), so N
workers share the bar partitions, and the two sinks never wait for each other: while
Redis is down PostgreSQL keeps up, and the reverse; the sink whose store is down keeps
its offsets where they are and catches up when the store is back. Not Faust agents: a
Faust stream hands an agent one event at a time, at about 3,500 envelopes/s here, while
``getmany`` hands over whole batches.

This module is a thin shell: the order of effects and the rebalance rule are the batch
loop's (:mod:`chronox_stream.runtime.loop`: a batch's offsets are committed only after its
write succeeded, a rebalance waits for the batch in progress), and each store implements
:class:`~chronox_stream.sinks.base.BarSink`. A write that fails because the store is
unreachable is retried with capped exponential backoff, never skipped (meanwhile ``/ready``
names the sink); one that PostgreSQL refuses for a value is split until the envelope at
fault is found, which is dead-lettered while the rest is written. Replaying a batch after a
crash or a rebalance changes nothing: both writes are idempotent.

An envelope that is not valid v1 is dead-lettered once, by the PostgreSQL sink (reason
``invalid_envelope``); the Redis sink leaves it out. The two sinks of a worker share one
:class:`~chronox_stream.sinks.decoded.DecodedEnvelopes`: whichever reads a record first
decodes it, and the other takes the result instead of decoding it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeAlias

from aiokafka import TopicPartition

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.runtime import metrics
from chronox_stream.runtime.app import Runtime
from chronox_stream.runtime.kafka import group_consumer
from chronox_stream.runtime.loop import Batch, BatchLoop, Record, isolate
from chronox_stream.runtime.names import sink_group
from chronox_stream.runtime.retry import until_done, until_world_recovers
from chronox_stream.sinks.base import BarSink, SinkRecord
from chronox_stream.sinks.decoded import DecodedEnvelopes

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
BATCH_WITHIN_MS = 200
#: Envelopes one sink decoded and the other has not read yet: a batch of lead each way.
DECODED_CAPACITY = 2 * BATCH_SIZE

Item: TypeAlias = tuple[Record, SinkRecord]


async def _postgres(runtime: Runtime) -> BarSink:
    return await runtime.postgres()


async def _redis(runtime: Runtime) -> BarSink:
    return runtime.redis()


@dataclass(frozen=True, slots=True)
class Mirror:
    """One store the bar topics are mirrored to, named as its consumer group is.

    ``judges`` marks the store that judges values (PostgreSQL): it alone dead-letters what
    is not an envelope, and a batch it refuses is split to find the envelope at fault.
    """

    name: str
    label: str
    connect: Callable[[Runtime], Awaitable[BarSink]]
    judges: bool


MIRRORS = (
    Mirror("postgres", "PostgreSQL", _postgres, judges=True),
    Mirror("redis", "Redis", _redis, judges=False),
)


class SinkHandler:
    """The loop's handler of one mirror: decode, then write the valid envelopes. No state.

    ``decoded`` is shared with the worker's other mirror (each record decoded once); a
    handler on its own gets one of its own.
    """

    stateful = False

    def __init__(self, runtime: Runtime, mirror: Mirror,
                 decoded: DecodedEnvelopes | None = None) -> None:  # fmt: skip
        self._runtime = runtime
        self._mirror = mirror
        self._decoded = decoded if decoded is not None else DecodedEnvelopes(DECODED_CAPACITY)

    async def assigned(self, partitions: Collection[TopicPartition]) -> None:
        """Logged, so an operator (and the backfill bench) sees when this mirror reads."""
        if partitions:
            log.info("%s sink assigned %d partition(s)", self._mirror.name, len(partitions),
                     extra={"count": len(partitions)})  # fmt: skip

    def released(self, partitions: Collection[TopicPartition]) -> None:
        return None

    async def flush(self, partitions: Collection[TopicPartition]) -> None:
        return None

    async def process(self, batch: Batch) -> None:
        """Decode (dead-letter or leave out what is not an envelope), then write the rest."""
        items: list[Item] = []
        decode = self._decoded.decode
        for records in batch.values():
            for record in records:
                decoded = decode(record)
                if isinstance(decoded, SinkRecord):
                    items.append((record, decoded))
                elif self._mirror.judges:
                    await self._runtime.dead_letter(record, decoded)
        if not items:
            return
        started = time.monotonic()
        what = f"{self._mirror.name} write"
        if self._mirror.judges:
            await isolate(what, items, self._write, self._refused)
        else:
            await until_world_recovers(what, partial(self._write, items))
        elapsed = round(time.monotonic() - started, 3)
        oldest = min(records[0].timestamp for records in batch.values() if records)
        metrics.sink_written(self._mirror.name, len(items), elapsed, oldest)
        log.debug("%s batch written", self._mirror.name,
                  extra={"count": len(items), "elapsed_s": elapsed})  # fmt: skip

    async def _write(self, items: Sequence[Item]) -> None:
        async def store() -> None:
            sink = await self._mirror.connect(self._runtime)
            await sink.store([item for _, item in items])

        await self._runtime.sink_health.watch(self._mirror.name, store)

    async def _refused(self, item: Item, rejected: Rejected) -> None:
        message = f"{self._mirror.label} refused it: {rejected.message}"
        await self._runtime.dead_letter(item[0], Rejected("invalid_envelope", message))


async def consume_bars(runtime: Runtime, mirror: Mirror, decoded: DecodedEnvelopes) -> None:
    """One consumer's life: the batch loop over the bar topics, in the mirror's group.

    The store is reached while the consumer joins its group (aiokafka joins in the
    background), so the first batch does not wait for it (PostgreSQL's pool and migration
    took 0.2-1.3 s of a backfill's first records); while it is unreachable the sink is
    reported down and retries, logged as the write it holds up, as it would at a write.
    """
    consumer = group_consumer(runtime.settings, sink_group(mirror.name))
    loop = BatchLoop(f"{mirror.name} sink", consumer, SinkHandler(runtime, mirror, decoded),
                     batch_size=BATCH_SIZE, within_ms=BATCH_WITHIN_MS,
                     group=sink_group(mirror.name))  # fmt: skip
    consumer.subscribe(runtime.topics.bar_names, listener=loop)
    await consumer.start()
    try:
        await until_world_recovers(f"{mirror.name} write",
                                   partial(runtime.sink_health.watch, mirror.name,
                                           partial(mirror.connect, runtime)))  # fmt: skip
        await loop.run()
    finally:
        await consumer.stop()


def mirror_task(runtime: Runtime, mirror: Mirror, decoded: DecodedEnvelopes
                ) -> Callable[[], Awaitable[None]]:  # fmt: skip
    """The app task of ``mirror``: a broken consumer is rebuilt with backoff, and its
    group's offsets say where to resume."""

    async def run() -> None:
        await until_done(f"{mirror.name} sink consumer",
                         partial(consume_bars, runtime, mirror, decoded))  # fmt: skip

    run.__qualname__ = f"sink_{mirror.name}"
    return run


def attach(runtime: Runtime) -> None:
    # One per worker, shared by its mirrors, and fed by its emitter with what it made.
    decoded = DecodedEnvelopes(DECODED_CAPACITY, seeded=runtime.seeded)
    for mirror in MIRRORS:
        runtime.app.task(mirror_task(runtime, mirror, decoded))
