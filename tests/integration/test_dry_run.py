"""Dry runs: each bar fetched at most once, the real run's counts reported, nothing written.

A ``flatpack+api+snapshot+stream`` dry run over days whose flat files exist but one
(2024-01-16, left to the api phase), then the real run of the same request on the same
state. The dry run must leave no trace in any store (bar topics, Redis, PostgreSQL, the
registry, the backfill-state and dedup changelogs), fetch from REST only the day no flat
file covers, and report per symbol and phase the counts the real run then emits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from chronox_stream.client.follow import Outcome, follow
from chronox_stream.domain.market_calendar import extended_hours
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.runtime.topics import message_count
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, wait_finished

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT"]
MISSING = "2024-01-16"  # no flat file: the api phase fetches it
# Zoned bounds inside regular sessions: every hour they span belongs to a day with a flat file
# (but the missing one), whatever the date rule; the 17th, the clock's day, has none published.
START, END = "2024-01-11T15:00:00Z", "2024-01-16T20:00:00Z"
TABLES = ("registry", "backfill-state", "dedup")


async def run(
    settings: Settings, producer: AIOKafkaProducer, rid: str, **fields: Any
) -> Outcome:
    """Send a request and follow it to the end, as ``chronox ingest --wait`` does."""
    doc = {"request_id": rid, "symbols": SYMBOLS, "start": START, "end": END,
           "strategy": "flatpack+api+snapshot", **fields}  # fmt: skip

    async def send() -> None:
        await producer.send_and_wait(settings.topic("control"), key=rid.encode(),
                                     value=orjson.dumps(doc))  # fmt: skip

    outcome = await follow(settings, rid, send, timeout_s=180)
    assert outcome.complete and not outcome.failures, (outcome.states, outcome.failures)
    return outcome


async def phase_counts(settings: Settings, rid: str) -> dict[tuple[str, str], int]:
    events = await wait_finished(settings, rid)
    counts = {(e["symbol"], e["phase"]): e["count"] for e in events if e["state"] == "done"}
    counts.update({(e["symbol"], "finished"): e["count"] for e in events
                   if e["state"] == "finished"})  # fmt: skip
    return counts


def aggregate_ranges(requests: list[dict[str, str]]) -> list[tuple[str, datetime, datetime]]:
    """(symbol, from, to) of each REST aggregates request, from its path."""
    out = []
    for r in requests:
        parts = r["path"].split("/")
        if parts[1:3] == ["v2", "aggs"]:
            first, last = (datetime.fromtimestamp(int(p) / 1000, UTC) for p in parts[-2:])
            out.append((parts[4], first, last))
    return out


async def bar_envelopes(settings: Settings) -> int:
    return sum([await message_count(settings, settings.topic(f"bars.{tf}")) for tf in TIMEFRAMES])


@pytest.mark.timeout(420)
async def test_a_dry_run_fetches_once_reports_the_real_counts_and_writes_nothing(
    settings: Settings, sim_knobs: Any, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    await sim_knobs.set_knobs(missing_days=[MISSING])
    start_worker()
    served = len(await sim_knobs.requests())
    dry = await run(settings, producer, "dry-1", dry_run=True,
                    strategy="flatpack+api+snapshot+stream")  # fmt: skip
    dry_requests = (await sim_knobs.requests())[served:]

    # Nothing written: no bars, no Redis keys, no rows, no registry, coverage or dedup state.
    assert await bar_envelopes(settings) == 0
    redis = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*")]
    finally:
        await redis.aclose()
    assert keys == []
    assert await fetch_rows(settings, "SELECT * FROM {schema}.bars") == []
    assert await message_count(settings, settings.topic("registry")) == 0
    for table in TABLES:
        assert await message_count(settings, f"{settings.app_id}-{table}-changelog") == 0, table

    # Fetched once: REST aggregates only for the day without a flat file, no range twice.
    opens, closes = extended_hours(datetime.fromisoformat(MISSING).date())
    ranges = aggregate_ranges(dry_requests)
    assert sorted({symbol for symbol, _, _ in ranges}) == SYMBOLS
    assert all(opens <= first and last < closes for _, first, last in ranges), ranges
    for symbol in SYMBOLS:
        mine = sorted((first, last) for s, first, last in ranges if s == symbol)
        assert all(a[1] < b[0] for a, b in zip(mine, mine[1:], strict=False)), mine

    # The real run of the same request on the same state emits what the dry run reported.
    served = len(await sim_knobs.requests())
    real = await run(settings, producer, "real-1", enable_stream=False)
    real_requests = (await sim_knobs.requests())[served:]
    assert dry.bars == real.bars > 0
    dry_counts = await phase_counts(settings, "dry-1")
    real_counts = await phase_counts(settings, "real-1")
    assert {k: v for k, v in dry_counts.items() if k[1] != "stream"} == real_counts
    assert all(real_counts[(s, "api")] > 0 for s in SYMBOLS), real_counts
    assert sorted(aggregate_ranges(real_requests)) == sorted(ranges), "the same REST fetches"
    assert await poll(lambda: _equal(bar_envelopes(settings), real.bars), timeout_s=30)


async def _equal(count: Any, expected: int) -> bool:
    return bool(await count == expected)
