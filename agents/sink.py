"""Sink: mirrors bar envelopes to Redis and PostgreSQL in batches.

It runs in every worker as an app task around a plain aiokafka consumer in its
own consumer group (``<app id>-sink``), so N workers share the bar partitions.
Not a Faust agent: a Faust stream hands an agent one event at a time, at about
3,500 envelopes/s here, while ``getmany`` hands over whole batches and a
2,000-row batch is written in a fraction of the time it takes Faust to gather it.

A rebalance waits for the batch in progress (``BatchFence``), so a partition's
writes never interleave with its next owner's. Offsets of a batch are committed
only after both writes (and any dead-lettering) succeeded: a failed write is
retried with capped exponential backoff, never skipped, and replaying a batch
after a crash or a rebalance changes nothing because both writes are idempotent.
"""

from __future__ import annotations

import logging
import time
from typing import TypeAlias

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from chronox_stream.app import Runtime
from chronox_stream.bars import Bar, Source
from chronox_stream.envelope import decode_bar
from chronox_stream.rejects import Rejected
from chronox_stream.retry import until_done
from chronox_stream.topics import BatchFence, group_consumer

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
BATCH_WITHIN_MS = 200

Record: TypeAlias = ConsumerRecord[bytes, bytes]


async def write_batch(runtime: Runtime, bars: list[tuple[Bar, Source, bytes]]) -> None:
    """Redis, then PostgreSQL (kafka-first order: the envelopes are already on Kafka)."""

    async def write_redis() -> None:
        await runtime.redis().publish([(bar, payload) for bar, _, payload in bars])

    async def write_postgres() -> None:
        await (await runtime.postgres()).write([(bar, source) for bar, source, _ in bars])

    started = time.monotonic()
    await until_done("redis write", write_redis)
    await until_done("postgres write", write_postgres)
    elapsed = round(time.monotonic() - started, 3)
    log.debug("sink batch written", extra={"count": len(bars), "elapsed_s": elapsed})


async def sink_records(runtime: Runtime, records: list[Record]) -> None:
    """Decode, dead-letter what is not an envelope, write the rest."""
    bars: list[tuple[Bar, Source, bytes]] = []
    for record in records:
        try:
            bar, source = decode_bar(record.value)
        except (ValueError, KeyError, TypeError) as exc:
            rejected = Rejected("invalid_envelope", f"not a v1 bar envelope: {exc}")
            await runtime.dead_letter(record, rejected)
            continue
        bars.append((bar, source, record.value))
    if bars:
        await write_batch(runtime, bars)


def next_offsets(
    batch: dict[TopicPartition, list[Record]],
) -> dict[TopicPartition, OffsetAndMetadata]:
    """What to commit after ``batch``: one past the last record of each partition."""
    return {tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items()}


async def consume_bars(runtime: Runtime) -> None:
    """One consumer's life: batches in, writes out, offsets committed after the writes."""
    consumer = group_consumer(runtime.settings, "sink")
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
                await sink_records(runtime, [r for records in batch.values() for r in records])
                try:
                    await consumer.commit(next_offsets(batch))
                except (CommitFailedError, IllegalStateError) as lost:
                    # The group moved on (a member timed out): the new owner replays the
                    # batch, which the idempotent writes absorb.
                    log.info("sink commit skipped after a rebalance: %s", lost)
    finally:
        await consumer.stop()


def attach(runtime: Runtime) -> None:
    async def sink() -> None:
        # A broken consumer is rebuilt with the writes' backoff; offsets say where to resume.
        await until_done("sink consumer", lambda: consume_bars(runtime))

    runtime.app.task(sink)
