"""API phase agent: fetches REST aggregates for a work item and publishes envelopes.

Work items arrive keyed by symbol, so each symbol is fetched by the worker that
owns its partition of the work topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from chronox_stream.app import Runtime, utcnow
from chronox_stream.envelope import envelope_for
from chronox_stream.rejects import Rejected
from chronox_stream.sources.polygon_rest import PolygonError
from chronox_stream.status import StatusEvent
from chronox_stream.timeframes import parse_timeframe
from chronox_stream.work import WorkItem

log = logging.getLogger(__name__)


async def run_api_phase(runtime: Runtime, item: WorkItem) -> int:
    """Fetch every bar of the item's window and send its envelope; return the bar count."""
    rest = await runtime.rest()
    topic = runtime.topics.bars[item.timeframe]
    delay = item.throttle_ms / 1000
    count = 0
    async for page in rest.aggregates(
        item.symbol, parse_timeframe(item.timeframe), item.start, item.end
    ):
        for bar in page:
            if not item.dry_run:
                if delay and count:
                    await asyncio.sleep(delay)
                await topic.send(key=item.symbol.encode(), value=envelope_for(bar, "api").to_json())
            count += 1
    return count


def attach(runtime: Runtime) -> None:
    @runtime.app.agent(runtime.topics.work, name="chronox.agents.api_phase", concurrency=1)
    async def api_phase(stream: Any) -> None:
        async for event in stream.events():
            try:
                item = WorkItem.from_json(event.value)
            except (ValueError, KeyError, TypeError) as exc:
                await runtime.dead_letter(event, Rejected("invalid_work_item", str(exc)))
                continue
            if item.phase != "api":
                continue
            fields = {"request_id": item.request_id, "symbol": item.symbol, "phase": item.phase}
            await runtime.report(
                StatusEvent(request_id=item.request_id, state="started", at=utcnow(),
                            symbol=item.symbol, phase=item.phase, dry_run=item.dry_run)
            )  # fmt: skip
            started = time.monotonic()
            try:
                count = await run_api_phase(runtime, item)
            except PolygonError as exc:
                log.error("api phase failed: %s", exc, extra=fields)
                await runtime.report(
                    StatusEvent(request_id=item.request_id, state="failed", at=utcnow(),
                                symbol=item.symbol, phase=item.phase, error=str(exc))
                )  # fmt: skip
                continue
            elapsed = round(time.monotonic() - started, 3)
            log.info("api phase done", extra={**fields, "count": count, "elapsed_s": elapsed})
            await runtime.report(
                StatusEvent(request_id=item.request_id, state="done", at=utcnow(),
                            symbol=item.symbol, phase=item.phase, count=count,
                            dry_run=item.dry_run)
            )  # fmt: skip
