"""Work items: one phase of one symbol over one window, keyed by symbol on the work topic.

Keying by symbol spreads symbols over the workers of the consumer group and keeps
all work of one symbol on one partition, so its state is handled in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from chronox_stream.control import BackfillRequest, PublishMode, SnapshotMethod
from chronox_stream.strategy import Phase


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkItem:
    """What a phase agent needs to run one phase for one symbol over ``[start, end]``."""

    request_id: str
    symbol: str
    timeframe: str
    phase: Phase
    start: datetime
    end: datetime
    snapshot_method: SnapshotMethod
    publish_mode: PublishMode
    throttle_ms: int
    dry_run: bool

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> WorkItem:
        doc: dict[str, Any] = orjson.loads(raw)
        doc["start"] = datetime.fromisoformat(doc["start"]).astimezone(UTC)
        doc["end"] = datetime.fromisoformat(doc["end"]).astimezone(UTC)
        return cls(**doc)


def plan_work(
    request: BackfillRequest, *, now: datetime, default_lookback: timedelta
) -> list[WorkItem]:
    """Split a request into one work item per symbol and phase.

    The range defaults to ``default_lookback`` before ``now``; an ``end`` in the
    future is clipped to ``now`` since no bar exists there yet.
    """
    end = min(request.end or now, now)
    start = request.start or end - default_lookback
    return [
        WorkItem(
            request_id=request.request_id,
            symbol=symbol,
            timeframe=request.timeframe,
            phase=phase,
            start=start,
            end=end,
            snapshot_method=request.snapshot_method,
            publish_mode=request.publish_mode,
            throttle_ms=request.throttle_ms,
            dry_run=request.dry_run,
        )
        for symbol in request.symbols
        for phase in request.phases
    ]
