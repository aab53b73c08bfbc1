"""The registry from outside a worker: send commands, read the current entries.

Commands go to the registry topic (the workers' registry agent applies them);
the current entries are read from the registry table's changelog, a compacted
topic that Faust keeps for it.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from chronox_stream.registry import RegistryCommand, RegistryEntry
from chronox_stream.settings import Settings
from chronox_stream.topics import ensure_topics, partitions_of


def changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-registry-changelog"


async def send_commands(settings: Settings, commands: list[RegistryCommand]) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for command in commands:
            await producer.send_and_wait(
                settings.topic("registry"), key=command.symbol.encode(), value=command.to_json()
            )
    finally:
        await producer.stop()


async def read_entries(settings: Settings) -> list[RegistryEntry]:
    """Every registered symbol, from the changelog (empty before a worker created it)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    latest: dict[bytes, bytes | None] = {}
    try:
        partitions = await partitions_of(settings, changelog_topic(settings))
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key is not None:
                        latest[record.key] = record.value
    finally:
        await consumer.stop()
    entries = [RegistryEntry.from_json(value) for value in latest.values() if value]
    return sorted(entries, key=lambda e: e.symbol)
