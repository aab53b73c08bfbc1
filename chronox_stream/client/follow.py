"""Following a request to completion on the status topic (``chronox ingest --wait``).

The consumer is positioned at the end of the status topic *before* the request
is sent, so only this request's events are read, however long the topic is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from chronox_stream.runtime import kafka
from chronox_stream.runtime.names import TopicNames
from chronox_stream.runtime.topics import ensure_topics, partitions_of
from chronox_stream.settings import Settings


@dataclass
class Outcome:
    """What happened to a request: per (symbol, phase) final state, and the failures' reasons."""

    work_items: int | None = None
    finished: set[str] = field(default_factory=set)
    states: dict[tuple[str, str], str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    bars: int = 0

    @property
    def complete(self) -> bool:
        return self.work_items is not None and len(self.finished) >= self.work_items

    def apply(self, event: dict[str, Any]) -> None:
        state, symbol, phase = event["state"], event.get("symbol"), event.get("phase")
        if state == "accepted":
            self.work_items = event["count"]
        elif state == "finished":
            self.finished.add(str(symbol))
        elif symbol and phase:
            self.states[(symbol, phase)] = state
            if state == "done":
                self.bars += event["count"]
            if state == "failed":
                self.failures.append(f"{symbol} {phase}: {event.get('error')}")


async def follow(
    settings: Settings,
    request_id: str,
    send: Callable[[], Awaitable[None]],
    *,
    timeout_s: float,
    progress: Progress | None = None,
) -> Outcome:
    """Send the request with ``send`` and read its status events until every symbol finished.

    The topics are created (all together) only when the status topic is missing: a worker
    or an earlier command created them, and asking the brokers again cost every
    ``ingest --wait`` a round trip before its request."""
    topic = TopicNames.for_settings(settings).status
    partitions = await partitions_of(settings, topic)
    if not partitions:
        await ensure_topics(settings)
        partitions = await partitions_of(settings, topic)
    consumer = kafka.reader(settings)
    await consumer.start()
    outcome = Outcome()
    tasks: dict[tuple[str, str], TaskID] = {}
    try:
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        await send()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not outcome.complete and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = orjson.loads(record.value)
                    if event["request_id"] == request_id:
                        outcome.apply(event)
                        _show(progress, tasks, event)
    finally:
        await consumer.stop()
    return outcome


def _show(
    progress: Progress | None, tasks: dict[tuple[str, str], TaskID], event: dict[str, Any]
) -> None:
    symbol, phase, state = event.get("symbol"), event.get("phase"), event["state"]
    if progress is None or not symbol or not phase:
        return
    key = (symbol, phase)
    if key not in tasks:
        tasks[key] = progress.add_task(f"{symbol:<8} {phase:<9}", total=1, status=state)
    finished = state in ("done", "failed")
    label = f"{state} ({event['count']} bars)" if state == "done" else state
    progress.update(tasks[key], completed=1 if finished else 0, status=label)


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )


def outcome_json(request_id: str, outcome: Outcome, *, dry_run: bool) -> dict[str, Any]:
    """What ``ingest --wait --json`` prints: the request's end state, one JSON document."""
    return {
        "request_id": request_id,
        "dry_run": dry_run,
        "complete": outcome.complete,
        "work_items": outcome.work_items,
        "bars": outcome.bars,
        "finished": sorted(outcome.finished),
        "phases": [
            {"symbol": symbol, "phase": phase, "state": state}
            for (symbol, phase), state in sorted(outcome.states.items())
        ],
        "failures": outcome.failures,
    }
