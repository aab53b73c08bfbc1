"""The registry from outside a worker: send commands, read the current entries.

Commands go to the registry topic (the workers' registry agent applies them);
the current entries are read from the registry table's changelog, a compacted
topic that Faust keeps for it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from chronox_stream.domain.registry import RegistryCommand, RegistryEntry
from chronox_stream.runtime import kafka
from chronox_stream.runtime.names import REGISTRY_TABLE, TopicNames, changelog_topic
from chronox_stream.runtime.topics import ensure_topics, read_to_end
from chronox_stream.settings import Settings


async def send_commands(settings: Settings, commands: list[RegistryCommand]) -> None:
    await ensure_topics(settings)
    producer = kafka.producer(settings, client_id=f"{settings.app_id}-cli")
    await producer.start()
    try:
        topic = TopicNames.for_settings(settings).registry
        for command in commands:
            await producer.send_and_wait(
                topic, key=command.symbol.encode(), value=command.to_json()
            )
    finally:
        await producer.stop()


async def read_entries(settings: Settings) -> list[RegistryEntry]:
    """Every registered symbol, from the changelog (empty before a worker created it)."""
    latest: dict[bytes, bytes | None] = {}
    for record in await read_to_end(settings, changelog_topic(settings, REGISTRY_TABLE)):
        if record.key is not None:
            latest[record.key] = record.value
    entries = [RegistryEntry.from_json(value) for value in latest.values() if value]
    return sorted(entries, key=lambda e: e.symbol)


def iso(moment: datetime | None) -> str | None:
    """A time as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, the form of the bars' ``ts`` (None stays
    None)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def entry_json(entry: RegistryEntry) -> dict[str, object]:
    """A registry entry as JSON (``registry list --json``, ``status --json``)."""
    return {
        "symbol": entry.symbol,
        "strategy": entry.strategy,
        "enabled": entry.enabled,
        "status": entry.status,
        "last_backfill": iso(entry.last_backfill),
        "last_snapshot": iso(entry.last_snapshot),
        "last_stream": iso(entry.last_stream),
        "last_error": entry.last_error,
    }

