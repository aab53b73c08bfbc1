"""Backfill agent: runs a symbol's phases in order for each work item it owns.

A phase that fails is reported (status topic, registry) and the next phase
still runs: the api phase can fill what a failed flatpack left open. A failure
of the world inside a phase (Kafka, PostgreSQL or Redis unreachable) does not
fail it: the phase is retried with backoff from its checkpoints until the world
recovers, so an outage delays a backfill but never drops it. The
stream phase fetches nothing: it registers the symbol for the live stream,
which the leader's WebSocket then subscribes (see ``agents/stream``).

While its fetching phases run (not in a dry run, nor in a stream refill) a work item
fetches its symbol's splits into ``<schema>.splits``, and it finishes once both are done,
so the adjusted read path knows the splits of every backfilled symbol, registered or not;
the scheduler refreshes them for the registry's symbols. A failed fetch is logged and
left to the next item or refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import partial

from chronox_stream.agents.scheduler import fetch_splits
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.contracts.status import State, StatusEvent
from chronox_stream.contracts.work import WorkItem
from chronox_stream.domain.registry import Op, RegistryCommand
from chronox_stream.domain.sources import Phase
from chronox_stream.domain.strategy import format_strategy
from chronox_stream.runtime.app import Runtime, utcnow
from chronox_stream.runtime.retry import until_world_recovers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhaseReport:
    """Where one phase of a work item reports: status topic, and registry unless a dry run."""

    runtime: Runtime
    item: WorkItem
    phase: Phase

    async def status(self, state: State, count: int = 0, error: str | None = None) -> None:
        await self.runtime.report(
            StatusEvent(request_id=self.item.request_id, symbol=self.item.symbol,
                        phase=self.phase, dry_run=self.item.dry_run, state=state, at=utcnow(),
                        count=count, error=error)
        )  # fmt: skip

    async def registry(self, op: Op, error: str | None = None) -> None:
        if not self.item.dry_run:
            await self.runtime.send_registry(
                RegistryCommand(op=op, symbol=self.item.symbol, phase=self.phase, at=utcnow(),
                                error=error)
            )  # fmt: skip

    async def stream(self, strategy: str) -> None:
        """Register the symbol for the live stream (its bars come from the tick agents)."""
        if not self.item.dry_run:
            await self.runtime.send_registry(
                RegistryCommand(op="stream", symbol=self.item.symbol, strategy=strategy,
                                at=utcnow())
            )  # fmt: skip


async def run_item(runtime: Runtime, item: WorkItem) -> None:
    splits = None
    if (not item.dry_run and not item.refetch and runtime.settings.splits_interval_s
            and item.phases != ("stream",)):  # fmt: skip
        # Fetched while the phases run (it never raises), awaited before the item finishes:
        # one REST call and a write, 10-80 ms, that kept the next work item waiting.
        splits = asyncio.ensure_future(fetch_splits(runtime, item.symbol))
    try:
        count = await _run_phases(runtime, item)
        if splits is not None:
            await splits
    finally:
        if splits is not None:
            splits.cancel()
    await runtime.report(
        StatusEvent(request_id=item.request_id, symbol=item.symbol, state="finished",
                    at=utcnow(), count=count, dry_run=item.dry_run)
    )  # fmt: skip
    log.info("work item finished", extra={"request_id": item.request_id, "symbol": item.symbol,
                                          "count": count})  # fmt: skip


async def _run_phases(runtime: Runtime, item: WorkItem) -> int:
    """Run the item's phases in order; return how many bars its emitter published."""
    runner = runtime.runner().for_item(item)
    emitter = runtime.emitter(item)
    for phase in item.phases:
        fields = {"request_id": item.request_id, "symbol": item.symbol, "phase": phase}
        report = PhaseReport(runtime, item, phase)
        await report.status("started")
        if phase == "stream":
            await report.stream(format_strategy(item.phases))
            await report.status("done")
            continue
        await report.registry("running")
        started = time.monotonic()
        try:
            count = await until_world_recovers(
                f"{phase} phase of {item.symbol}",
                partial(runner.run, phase, item, emitter, utcnow()),
            )
        except Exception as exc:  # a failed phase is reported; it never stops the agent
            log.exception("phase failed: %s", exc, extra=fields)
            await report.status("failed", error=str(exc))
            await report.registry("phase_failed", error=str(exc))
            continue
        elapsed = round(time.monotonic() - started, 3)
        log.info("phase done", extra={**fields, "count": count, "elapsed_s": elapsed})
        await report.status("done", count=count)
        await report.registry("phase_done")
    return emitter.count


async def run_raw_item(runtime: Runtime, raw: bytes | None) -> None:
    """Run the work item ``raw`` holds; ``Rejected`` (``invalid_work_item``) if it holds none."""
    try:
        item = WorkItem.from_json(raw or b"")
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise Rejected("invalid_work_item", str(exc)) from None
    await run_item(runtime, item)


def attach(runtime: Runtime) -> None:
    runtime.settle_each(
        runtime.topics.work, "chronox.agents.backfill", "work item", partial(run_raw_item, runtime)
    )
