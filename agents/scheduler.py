"""Scheduler daemon: the leader keeps the registry's symbols current by itself.

Only the consumer group's leader acts, so N workers do not multiply the
requests. When a worker becomes the leader (after a rebalance, e.g. because
a worker died) it resets, once its registry table has had ``RESET_AFTER_S`` to
catch up, the ``running`` states left in the registry: the work items behind
them are redelivered to their new owners, which report afresh and resume from
their checkpoints. Then, every ``CHRONOX_SCHEDULER_INTERVAL_S``,
it sends one registry-driven backfill request (``daemon-…``): each enabled
symbol runs its strategy's fetching phases, and the gap rule decides what the
api phase fetches. Streaming needs no timer: the stream agent follows the
registry every second.

The leader also keeps ``<schema>.splits`` current (:func:`keep_splits`): every
``CHRONOX_SPLITS_INTERVAL_S`` it fetches each registered symbol's splits from
``/v3/reference/splits``, and a symbol's at once when it is newly registered or
was backfilled since its last fetch. A failed fetch is retried after
``SPLITS_RETRY_S``; a record that is no valid split is skipped and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import orjson

from chronox_stream.domain.registry import RegistryCommand, stale_running
from chronox_stream.domain.splits import due_symbols
from chronox_stream.runtime.app import Runtime, utcnow
from chronox_stream.runtime.retry import until_done

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
RESET_AFTER_S = 10.0
SPLITS_RETRY_S = 60.0


def daemon_request() -> tuple[bytes, bytes]:
    """(key, value) of a registry-driven request; the stream phase has its own agent."""
    request_id = f"daemon-{uuid.uuid4().hex[:16]}"
    return request_id.encode(), orjson.dumps({"request_id": request_id, "enable_stream": False})


async def lead(runtime: Runtime) -> None:
    interval = runtime.settings.scheduler_interval_s
    led_since: float | None = None
    reset_done = False
    last_run = float("-inf")
    while True:
        now = time.monotonic()
        if not runtime.app.is_leader():
            led_since, reset_done = None, False
        elif led_since is None:
            led_since = now
        if led_since is not None and not reset_done and now - led_since >= RESET_AFTER_S:
            reset_done = True
            for symbol in stale_running(runtime.tables.registry.entries()):
                await runtime.send_registry(RegistryCommand(op="reset", symbol=symbol,
                                                            at=utcnow()))  # fmt: skip
                log.info("reset a stale running state", extra={"symbol": symbol})
        if led_since is not None and interval and now - last_run >= interval:
            last_run = now
            if any(entry.enabled for entry in runtime.tables.registry.entries()):
                key, value = daemon_request()
                await runtime.topics.control.send(key=key, value=value)
                log.info("scheduled run requested", extra={"request_id": key.decode()})
        await asyncio.sleep(CHECK_EVERY_S)


async def fetch_splits(runtime: Runtime, symbol: str) -> bool:
    """Fetch one symbol's splits into PostgreSQL; ``False`` (logged) if it failed."""
    try:
        records, skipped = await runtime.runner().rest.splits(symbol)
        changed = await (await runtime.postgres()).write_splits(records)
    except Exception as exc:  # REST, PostgreSQL: the next attempt comes after SPLITS_RETRY_S
        log.warning("splits fetch failed: %s: %s", type(exc).__name__, exc,
                    extra={"symbol": symbol})  # fmt: skip
        return False
    for reason in skipped:
        log.warning("skipped a split record: %s", reason, extra={"symbol": symbol})
    log.info("splits fetched: %d valid, %d skipped, %d rows changed", len(records),
             len(skipped), changed, extra={"symbol": symbol})  # fmt: skip
    return True


async def keep_splits(runtime: Runtime) -> None:
    """The leader's splits refresh (see the module doc); nothing when the interval is 0."""
    interval = runtime.settings.splits_interval_s
    refreshed: dict[str, float] = {}
    while interval:
        if not runtime.app.is_leader():
            refreshed.clear()
        else:
            entries = list(runtime.tables.registry.entries())
            backfilled = {e.symbol: e.last_backfill.timestamp() for e in entries
                          if e.last_backfill is not None}  # fmt: skip
            now = time.time()
            for symbol in due_symbols((e.symbol for e in entries), refreshed, backfilled, now,
                                      interval):  # fmt: skip
                ok = await fetch_splits(runtime, symbol)
                refreshed[symbol] = now if ok else now - interval + min(interval, SPLITS_RETRY_S)
        await asyncio.sleep(CHECK_EVERY_S)


def attach(runtime: Runtime) -> None:
    async def scheduler() -> None:
        await until_done("scheduler", lambda: lead(runtime))

    async def splits() -> None:
        await until_done("splits refresh", lambda: keep_splits(runtime))

    runtime.app.task(scheduler)
    runtime.app.task(splits)
