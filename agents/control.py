"""Control agent: validates backfill requests and fans them out as per-symbol work items."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from chronox_stream.app import Runtime, utcnow
from chronox_stream.control import parse_backfill_request
from chronox_stream.rejects import Rejected
from chronox_stream.status import StatusEvent
from chronox_stream.work import plan_work

log = logging.getLogger(__name__)


def attach(runtime: Runtime) -> None:
    lookback = timedelta(days=runtime.settings.backfill_lookback_days)

    @runtime.app.agent(runtime.topics.control, name="chronox.agents.control", concurrency=1)
    async def control(stream: Any) -> None:
        async for event in stream.events():
            try:
                request = parse_backfill_request(event.value, now=utcnow())
            except Rejected as rejected:
                await runtime.dead_letter(event, rejected)
                continue
            items = plan_work(request, now=utcnow(), default_lookback=lookback)
            for item in items:
                await runtime.topics.work.send(key=item.symbol.encode(), value=item.to_json())
            await runtime.report(
                StatusEvent(
                    request_id=request.request_id,
                    state="accepted",
                    at=utcnow(),
                    count=len(items),
                    dry_run=request.dry_run,
                )
            )
            log.info(
                "accepted request: %d symbol(s), %d work item(s)",
                len(request.symbols),
                len(items),
                extra={"request_id": request.request_id, "count": len(items)},
            )
