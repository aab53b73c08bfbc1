"""``chronox status``: per symbol what the registry, the coverage and the stream say, and lag.

Everything is read from outside the workers: the registry and backfill-state
changelogs, the stream state the leader keeps in Redis (it expires when no
leader refreshes it), and each consumer group's committed offsets against the
ends of its topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
import redis.asyncio as aioredis

from chronox_stream.client.registry import entry_json, iso, read_entries
from chronox_stream.domain.coverage import Coverage
from chronox_stream.domain.gaps import Interval
from chronox_stream.domain.registry import RegistryEntry
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.runtime import kafka
from chronox_stream.runtime.names import (
    BACKFILL_STATE_TABLE,
    TICKS_GROUP,
    changelog_topic,
    group_id,
    sink_group,
    stream_state_key,
)
from chronox_stream.runtime.topics import read_to_end
from chronox_stream.settings import Settings
from chronox_stream.sources.phases import planned_api_windows


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    entry: RegistryEntry
    open_gaps: list[Interval]
    streaming: bool


@dataclass(frozen=True, slots=True)
class Report:
    symbols: list[SymbolStatus]
    stream: dict[str, object] | None
    lag: dict[str, int]


def open_gaps(settings: Settings, coverage: Coverage, now: datetime) -> list[Interval]:
    """The 1m windows an api phase run now would fetch (the gap rule, as the worker applies it)."""
    return planned_api_windows(settings, coverage, TIMEFRAMES["1m"], start=None, end=now, now=now)


async def coverages(settings: Settings) -> dict[str, Coverage]:
    latest: dict[str, bytes | None] = {}
    for record in await read_to_end(settings, changelog_topic(settings, BACKFILL_STATE_TABLE)):
        if record.key is not None:
            latest[record.key.decode()] = record.value
    return {key: Coverage.from_bytes(value) for key, value in latest.items() if value}


async def stream_state(settings: Settings) -> dict[str, object] | None:
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    try:
        raw = await client.get(stream_state_key(settings.redis_prefix))
    finally:
        await client.aclose()
    return orjson.loads(raw) if raw else None


async def group_lag(settings: Settings) -> dict[str, int]:
    """Messages not yet committed, per consumer group of the app (-1: the group has none)."""
    groups = {"agents": group_id(settings), "ticks": group_id(settings, TICKS_GROUP),
              "postgres sink": group_id(settings, sink_group("postgres")),
              "redis sink": group_id(settings, sink_group("redis"))}  # fmt: skip
    admin = kafka.admin(settings)
    consumer = kafka.reader(settings)
    await admin.start()
    await consumer.start()
    try:
        lag = {}
        for name, group in groups.items():
            offsets = await admin.list_consumer_group_offsets(group)
            mine = {tp: meta.offset for tp, meta in offsets.items()
                    if tp.topic.startswith(settings.topic_prefix + ".")}  # fmt: skip
            if not mine:
                lag[name] = -1
                continue
            ends = await consumer.end_offsets(list(mine))
            lag[name] = sum(max(ends[tp] - max(offset, 0), 0) for tp, offset in mine.items())
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def gather(settings: Settings, now: datetime) -> Report:
    entries = await read_entries(settings)
    covered = await coverages(settings)
    stream = await stream_state(settings)
    subscribed = set(stream.get("symbols", [])) if stream and stream.get("connected") else set()  # type: ignore[call-overload]
    symbols = [
        SymbolStatus(
            entry,
            open_gaps(settings, covered.get(f"{entry.symbol}|1m", Coverage()), now),
            entry.symbol in subscribed,
        )  # fmt: skip
        for entry in entries
    ]
    return Report(symbols, stream, await group_lag(settings))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def render(report: Report) -> str:
    header = ("symbol", "strategy", "enabled", "status", "last_backfill", "last_snapshot",
              "last_stream", "open gaps (1m)", "streaming")  # fmt: skip
    rows = [header]
    for s in report.symbols:
        e = s.entry
        hours = sum((g.end - g.start).total_seconds() for g in s.open_gaps) / 3600
        gaps = f"{len(s.open_gaps)} ({hours:.1f} h)" if s.open_gaps else "none"
        rows.append((e.symbol, e.strategy, "yes" if e.enabled else "no", e.status,
                     _when(e.last_backfill), _when(e.last_snapshot), _when(e.last_stream), gaps,
                     "yes" if s.streaming else "no"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    if len(rows) == 1:
        lines.append("(no registered symbols)")
    stream = report.stream
    if stream and stream.get("connected"):
        lines.append(f"stream: connected since {stream.get('since')}, "
                     f"{len(stream.get('symbols', []))} symbol(s)")  # type: ignore[arg-type]  # fmt: skip
    else:
        why = f" ({stream.get('reason')})" if stream else ""
        lines.append(f"stream: not connected{why}")
    lags = ", ".join(f"{name} {'-' if n < 0 else n}" for name, n in report.lag.items())
    lines.append(f"consumer lag (messages): {lags}")
    return "\n".join(lines)


def report_json(report: Report) -> dict[str, object]:
    """The report as one JSON document (``status --json``); a group's name is a key
    (``postgres_sink``), and one without committed offsets has a lag of ``null``."""
    symbols = [
        {
            **entry_json(s.entry),
            "open_gaps": [{"start": iso(g.start), "end": iso(g.end)} for g in s.open_gaps],
            "streaming": s.streaming,
        }
        for s in report.symbols
    ]
    stream = report.stream or {}
    return {
        "symbols": symbols,
        "stream": {
            "connected": bool(stream.get("connected")),
            "reason": stream.get("reason"),
            "since": stream.get("since"),
            "symbols": stream.get("symbols", []),
        },
        "lag": {name.replace(" ", "_"): (None if n < 0 else n) for name, n in report.lag.items()},
    }
