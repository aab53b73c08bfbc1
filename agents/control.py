"""Control agent: validates backfill requests and fans them out as per-symbol work items."""

from __future__ import annotations

import logging
from functools import partial

from chronox_stream.contracts.control import parse_backfill_request
from chronox_stream.contracts.status import StatusEvent
from chronox_stream.contracts.work import plan_work
from chronox_stream.domain.strategy import parse_strategy
from chronox_stream.runtime.app import Runtime, utcnow

log = logging.getLogger(__name__)


async def accept(runtime: Runtime, raw: bytes | None) -> None:
    """Validate one request, send its work items, report it accepted (``Rejected`` if invalid).

    Sent again whole if the world fails half-way: a work item repeated runs from its
    symbol's checkpoints, so it fetches nothing twice.
    """
    request = parse_backfill_request(raw or b"", now=utcnow())
    registered = {
        entry.symbol: (parse_strategy(entry.strategy), entry.enabled)
        for entry in runtime.tables.registry.entries()
    }
    items = plan_work(request, now=utcnow(), registered=registered)
    for item in items:
        await runtime.topics.work.send(key=item.symbol.encode(), value=item.to_json())
    await runtime.report(
        StatusEvent(request_id=request.request_id, state="accepted", at=utcnow(),
                    count=len(items), dry_run=request.dry_run)
    )  # fmt: skip
    log.info(
        "accepted request: %d work item(s)",
        len(items),
        extra={"request_id": request.request_id, "count": len(items)},
    )


def attach(runtime: Runtime) -> None:
    accept_raw = partial(accept, runtime)
    runtime.settle_each(runtime.topics.control, "chronox.agents.control", "control request",
                        accept_raw)  # fmt: skip
