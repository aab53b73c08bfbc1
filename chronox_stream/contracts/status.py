"""Progress events on the status topic, keyed by request_id (read by ``chronox ingest --wait``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal

import orjson

State = Literal["accepted", "started", "done", "failed", "finished"]
"""``accepted``: request split into ``count`` work items; ``started``/``done``/``failed``:
one phase of one symbol; ``finished``: every phase of one symbol ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusEvent:
    """One step of a request: the whole request (no symbol/phase) or one phase of a symbol."""

    request_id: str
    state: State
    at: datetime
    symbol: str | None = None
    phase: str | None = None
    count: int = 0
    dry_run: bool = False
    error: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))
