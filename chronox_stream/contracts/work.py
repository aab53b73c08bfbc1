"""Work items: all phases of one request for one symbol, keyed by symbol on the work topic.

Keying by symbol spreads symbols over the workers of the consumer group and
keeps all work and state of one symbol on one partition, so one worker runs a
symbol's phases in order and owns its tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from chronox_stream.contracts.control import BackfillRequest, PublishMode, SnapshotMethod
from chronox_stream.domain.sources import Phase
from chronox_stream.domain.strategy import DEFAULT_STRATEGY, parse_strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkItem:
    """What the backfill agent needs to run a symbol's phases over ``[start, end]``.

    ``start`` is ``None`` when the request named none: the gap rule then decides.
    """

    request_id: str
    symbol: str
    timeframe: str
    phases: tuple[Phase, ...]
    start: datetime | None
    end: datetime
    snapshot_method: SnapshotMethod
    publish_mode: PublishMode
    throttle_ms: int
    dry_run: bool
    #: Fetch every stretch of ``[start, end]`` in the api phase, covered or not (a refill).
    refetch: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> WorkItem:
        doc: dict[str, Any] = orjson.loads(raw)
        doc["start"] = _utc(doc["start"]) if doc.get("start") else None
        doc["end"] = _utc(doc["end"])
        doc["phases"] = parse_strategy("+".join(doc["phases"]))
        return cls(**doc)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def plan_work(
    request: BackfillRequest,
    *,
    now: datetime,
    registered: Mapping[str, tuple[tuple[Phase, ...], bool]],
) -> list[WorkItem]:
    """One work item per symbol; an ``end`` in the future is clipped to ``now``.

    ``registered`` maps each registry symbol to (strategy, enabled). Without
    symbols the request covers the enabled ones. A symbol's phases are the
    request's strategy if it names one (an override), else the registry's,
    else ``DEFAULT_STRATEGY``; ``enable_stream: false`` removes ``stream``.
    """
    end = min(request.end or now, now)
    symbols = request.symbols or tuple(s for s, (_, on) in registered.items() if on)
    default = parse_strategy(DEFAULT_STRATEGY)
    targets = {s: request.strategy or registered.get(s, (default, True))[0] for s in symbols}
    return [
        WorkItem(
            request_id=request.request_id,
            symbol=symbol,
            timeframe=request.timeframe,
            phases=tuple(p for p in phases if p != "stream" or request.enable_stream),
            start=request.start,
            end=end,
            snapshot_method=request.snapshot_method,
            publish_mode=request.publish_mode,
            throttle_ms=request.throttle_ms,
            dry_run=request.dry_run,
            refetch=request.refetch,
        )
        for symbol, phases in targets.items()
    ]
