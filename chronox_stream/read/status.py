"""The pipeline's state as JSON for ``GET /v1/status`` and ``GET /v1/symbols``.

The same report as ``chronox status`` (``client.status.gather``: registry, open gaps,
stream connection, consumer lag), plus the number of records on the dead-letter topic.
Gathering reads changelogs and group offsets from Kafka (a second or more), so a report
is kept for :data:`FRESH_S` and shared by the requests that come meanwhile: a page
refreshing every few seconds, or many of them, costs Kafka one gather at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from chronox_stream.client.registry import entry_json, iso, read_entries
from chronox_stream.client.status import Report, gather, report_json
from chronox_stream.runtime.names import TopicNames
from chronox_stream.runtime.topics import message_count
from chronox_stream.settings import Settings

#: How long a gathered report is served again, seconds.
FRESH_S = 2.0

T = TypeVar("T")


def status_document(report: Report, dead_letters: int, now: datetime) -> dict[str, Any]:
    """``chronox status --json``'s document, with when it was gathered and the number of
    records on the dead-letter topic."""
    return {"generated_at": iso(now), **report_json(report), "dead_letters": dead_letters}


class Fresh(Generic[T]):
    """The value of ``load``, loaded again once it is :data:`FRESH_S` old; callers that come
    while it loads wait for that load instead of starting their own."""

    def __init__(self, load: Callable[[], Awaitable[T]]) -> None:
        self._load = load
        self._lock = asyncio.Lock()
        self._value: tuple[float, T] | None = None

    async def get(self) -> T:
        async with self._lock:
            if self._value is None or time.monotonic() - self._value[0] >= FRESH_S:
                self._value = (time.monotonic(), await self._load())
            return self._value[1]


def status_source(settings: Settings) -> Fresh[dict[str, Any]]:
    async def load() -> dict[str, Any]:
        now = datetime.now(UTC)
        report = await gather(settings, now)
        dead = await message_count(settings, TopicNames.for_settings(settings).dlq)
        return status_document(report, dead, now)

    return Fresh(load)


def symbols_source(settings: Settings) -> Fresh[dict[str, Any]]:
    async def load() -> dict[str, Any]:
        return {"symbols": [entry_json(e) for e in await read_entries(settings)]}

    return Fresh(load)
