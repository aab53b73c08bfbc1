"""Sink agent: mirrors bar envelopes to Redis and PostgreSQL in batches.

Offsets of a batch are committed only after both writes succeeded: a failed
write is retried with capped exponential backoff, never skipped, and replaying
a batch after a crash changes nothing because the upsert is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chronox_stream.app import Runtime
from chronox_stream.envelope import Envelope, bar_from_envelope, decode_envelope
from chronox_stream.rejects import Rejected

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
BATCH_WITHIN_S = 0.5
BACKOFF_CAP_S = 15.0


async def until_done(what: str, write: Callable[[], Awaitable[Any]]) -> None:
    """Run ``write`` until it succeeds, backing off between failures."""
    attempt = 0
    while True:
        try:
            await write()
            return
        except Exception as failure:  # asyncpg and redis raise their own error trees
            error = failure
        delay = random.uniform(0, min(BACKOFF_CAP_S, 0.2 * 2**attempt))
        attempt += 1
        log.warning(
            "%s write failed (attempt %d), retrying in %.1fs: %s", what, attempt, delay, error
        )
        await asyncio.sleep(delay)


async def write_batch(runtime: Runtime, envelopes: list[Envelope]) -> None:
    """Redis, then PostgreSQL (kafka-first order: the envelopes are already on Kafka)."""
    rows = [(bar_from_envelope(e), e.source) for e in envelopes]

    async def write_redis() -> None:
        await runtime.redis().publish(envelopes)

    async def write_postgres() -> None:
        await (await runtime.postgres()).write(rows)

    started = time.monotonic()
    await until_done("redis", write_redis)
    await until_done("postgres", write_postgres)
    elapsed = round(time.monotonic() - started, 3)
    log.debug("sink batch written", extra={"count": len(envelopes), "elapsed_s": elapsed})


def attach(runtime: Runtime) -> None:
    @runtime.app.agent(runtime.topics.all_bars, name="chronox.agents.sink", concurrency=1)
    async def sink(stream: Any) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_S):
            envelopes: list[Envelope] = []
            for event in events:
                try:
                    envelopes.append(decode_envelope(event.value))
                except (ValueError, KeyError, TypeError) as exc:
                    rejected = Rejected("invalid_envelope", f"not a v1 bar envelope: {exc}")
                    await runtime.dead_letter(event, rejected)
            if envelopes:
                await write_batch(runtime, envelopes)
