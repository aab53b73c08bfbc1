"""``chronox demo``: the whole pipeline on the embedded simulator, end to end, in one command.

It brings the local stack up, starts the simulator and one worker, sends a
backfill for a few symbols, waits until every phase reported done, and prints
what landed: rows in PostgreSQL, messages on Redis, bars per source.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from chronox_stream.client.children import Child
from chronox_stream.client.follow import follow
from chronox_stream.client.ingest import new_request_id, send_request
from chronox_stream.client.reach import reaching_postgres
from chronox_stream.runtime.names import bars_channel
from chronox_stream.runtime.topics import ensure_topics
from chronox_stream.settings import Settings

DEMO_SYMBOLS = ("AAPL", "MSFT", "NVDA")
DEMO_STRATEGY = "flatpack+api+snapshot"


@dataclass(frozen=True)
class DemoSummary:
    request_id: str
    phases_done: int
    postgres_rows: int
    redis_messages: int
    rows_by_source: dict[str, int]
    failures: list[str]
    elapsed_s: float

    def render(self) -> str:
        sources = ", ".join(f"{k}={v}" for k, v in sorted(self.rows_by_source.items())) or "none"
        took = f"{self.elapsed_s:.1f}s"
        return (
            f"request {self.request_id}: {self.phases_done} phase(s) done in {took}\n"
            f"  PostgreSQL rows: {self.postgres_rows}\n"
            f"  Redis messages:  {self.redis_messages}\n"
            f"  rows by source:  {sources}"
            + "".join(f"\n  failed: {failure}" for failure in self.failures)
        )


async def _count_rows(settings: Settings, symbols: tuple[str, ...]) -> tuple[int, dict[str, int]]:
    with reaching_postgres(settings):
        conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    try:
        rows = await conn.fetch(
            f'SELECT source, count(*) AS n FROM "{settings.postgres_schema}".bars '
            "WHERE symbol = ANY($1::text[]) GROUP BY source",
            list(symbols),
        )
    finally:
        await conn.close()
    by_source = {r["source"]: r["n"] for r in rows}
    return sum(by_source.values()), by_source


async def _run(settings: Settings, days: int) -> DemoSummary:
    await ensure_topics(settings)
    redis = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    pubsub = redis.pubsub()
    await pubsub.psubscribe(bars_channel(settings.redis_prefix, "*", "*"))  # every bar channel
    counter = {"n": 0}

    async def count_messages() -> None:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                counter["n"] += 1

    listener = asyncio.create_task(count_messages())
    started = time.monotonic()
    request_id = new_request_id()
    end = datetime.now(UTC)
    request = {
        "request_id": request_id,
        "symbols": list(DEMO_SYMBOLS),
        "strategy": DEMO_STRATEGY,
        "start": (end - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    outcome = await follow(
        settings, request_id, lambda: send_request(settings, request), timeout_s=300
    )
    stable_rows, previous = 0, -1
    while stable_rows != previous:  # the sink writes shortly after the phase is done
        previous = stable_rows
        await asyncio.sleep(2)
        stable_rows, by_source = await _count_rows(settings, DEMO_SYMBOLS)
    listener.cancel()
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await redis.aclose()
    return DemoSummary(
        request_id,
        sum(1 for state in outcome.states.values() if state == "done"),
        stable_rows,
        counter["n"],
        by_source,
        outcome.failures,
        time.monotonic() - started,
    )


def run_demo(settings: Settings, *, days: int = 3) -> DemoSummary:
    """Run the demo; the stack stays up afterwards (``chronox stack down`` stops it)."""
    from chronox_stream.stack import up

    up(settings)
    logs = Path(settings.stack_dir).resolve() / "logs"
    env = settings.to_env()
    sim = Child.start(
        "simulator", ["chronox_stream", "sim"], env=env, log_path=logs / "demo-sim.log"
    )
    worker = None
    try:
        sim.wait_for_log("listening", timeout_s=120)
        worker = Child.start(
            "worker", ["chronox_stream", "worker"], env=env, log_path=logs / "demo-worker.log"
        )
        worker.wait_for_log("Ready", timeout_s=120)
        return asyncio.run(_run(settings, days))
    finally:
        if worker is not None:
            worker.stop()
        sim.stop()
