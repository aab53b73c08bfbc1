"""The topics chronox-stream owns: partition counts, configs, and their creation.

The broker runs with automatic topic creation off, so every process that
produces or consumes (workers, ``chronox ingest``, tests) first calls
``ensure_topics``; it creates what is missing and leaves existing topics alone.

Faust's own topics (the tables' changelogs, the assignor's leader topic) are created
here too, as Faust would create them. Faust creates them while its worker starts, just
before it joins the group; when the broker's metadata did not show them yet by the
assignment (seen on a busy machine), Faust ignored them, and the tables were left without
changelog partitions: the worker never became ready, or a table write failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.structs import ConsumerRecord

from chronox_stream.runtime import kafka
from chronox_stream.runtime.names import (
    BACKFILL_STATE_TABLE,
    DEDUP_TABLE,
    REGISTRY_TABLE,
    TopicNames,
    changelog_topic,
    leader_topic,
)
from chronox_stream.settings import Settings


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def durability(settings: Settings) -> dict[str, str]:
    """The config every topic the app creates gets: ``min.insync.replicas`` when set (the
    broker's default otherwise). The replication factor is the create request's own field."""
    isr = settings.topic_min_insync_replicas
    return {} if isr is None else {"min.insync.replicas": str(isr)}


def retained(ms: int | None) -> dict[str, str]:
    """``retention.ms`` when set (the broker's default otherwise; -1 keeps records forever)."""
    return {} if ms is None else {"retention.ms": str(ms)}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the app with its partitions and config; the changelogs stay compacted
    and take no retention."""
    names = TopicNames.for_settings(settings)
    n = settings.topic_partitions
    s = settings
    specs = [
        TopicSpec(names.control, n),
        TopicSpec(names.registry, n),
        TopicSpec(names.work, n),
        TopicSpec(names.status, n, retained(s.topic_retention_status_ms)),
        TopicSpec(names.dlq, n, retained(s.topic_retention_dlq_ms)),
        *(TopicSpec(name, n, retained(s.topic_retention_bars_ms)) for name in names.bars.values()),
        TopicSpec(names.ticks_raw, n, retained(s.topic_retention_ticks_ms)),
        # The tick aggregator's changelog: the latest value of each window key is all it needs.
        TopicSpec(
            names.ticks_state,
            n,
            {
                "cleanup.policy": "compact",
                "segment.ms": "600000",
                "min.cleanable.dirty.ratio": "0.1",
            },
        ),  # fmt: skip
        TopicSpec(names.ticks_bars, n, retained(s.topic_retention_ticks_ms)),
        *(TopicSpec(changelog_topic(settings, table), n, {"cleanup.policy": "compact"})
          for table in (REGISTRY_TABLE, DEDUP_TABLE, BACKFILL_STATE_TABLE)),
        TopicSpec(leader_topic(settings), 1),
    ]  # fmt: skip
    extra = durability(settings)
    return [TopicSpec(spec.name, spec.partitions, {**spec.config, **extra}) for spec in specs]


def topic_config(settings: Settings, name: str) -> dict[str, str]:
    """The config ``name`` is created with (for Faust's own declaration of the topic)."""
    return next(spec.config for spec in topic_specs(settings) if spec.name == name)


async def partitions_of(settings: Settings, topic: str) -> list[TopicPartition]:
    """The partitions of an existing topic (none if it does not exist)."""
    admin = kafka.admin(settings)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description["error_code"]:
        return []
    return sorted(TopicPartition(topic, p["partition"]) for p in description["partitions"])


async def message_count(settings: Settings, topic: str) -> int:
    """Records written to ``topic`` so far: the sum of its end offsets (0 if it does not
    exist; on a compacted topic, more than it holds)."""
    partitions = await partitions_of(settings, topic)
    if not partitions:
        return 0
    consumer = kafka.reader(settings)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def read_to_end(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the beginning to its end as of now (none if the
    topic does not exist), read without a consumer group."""
    return await read_partitions(settings, await partitions_of(settings, topic))


async def read_partitions(
    settings: Settings,
    partitions: list[TopicPartition],
    *,
    last: int | None = None,
    since: datetime | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``partitions`` up to their end as of now (with ``last``, only that
    many of the latest of each; with ``since``, only those written from then on), in offset
    order within each partition, read without a consumer group."""
    if not partitions:
        return []
    consumer = kafka.reader(settings)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        if since is not None:
            found = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in partitions}
            )
            starts = {tp: ends[tp] if at is None else at.offset for tp, at in found.items()}
        for tp in partitions:
            consumer.seek(tp, starts[tp] if last is None else max(starts[tp], ends[tp] - last))
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                records.extend(record for record in batch if record.offset < ends[tp])
    finally:
        await consumer.stop()
    return records


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics; return the names created.

    One create request for all of them, which the brokers answer per topic (created,
    already there, or an error, raised): listing the cluster's topics first took 0.4-0.8 s
    on a cluster of a few thousand, paid by every ``chronox ingest`` before its request.
    """
    admin = kafka.admin(settings)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(s.name, s.partitions, settings.topic_replication_factor,
                      topic_configs=s.config) for s in topic_specs(settings)]
        )  # fmt: skip
        created = []
        for name, error_code, *_ in response.topic_errors:
            if error_code == 0:
                created.append(name)
            elif error_code != TopicAlreadyExistsError.errno:
                raise for_code(error_code)(f"topic {name} could not be created")
        return created
    finally:
        await admin.close()


async def delete_topics(settings: Settings) -> list[str]:
    """Delete every topic of these settings' prefix and app id (its changelogs too); return
    the names deleted. For throwaway runs: tests and benchmarks."""
    admin = kafka.admin(settings)
    await admin.start()
    try:
        prefixes = (settings.topic_prefix + ".", settings.app_id + "-")
        mine = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if mine:
            await admin.delete_topics(mine)
        return mine
    finally:
        await admin.close()
