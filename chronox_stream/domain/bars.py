"""The OHLCV bar as it flows through the pipeline (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Source = Literal["flatpack", "api", "stream", "snapshot"]

#: Source precedence: a bar may replace an emitted one only from a source ranked at least as high.
SOURCE_RANK: dict[Source, int] = {"flatpack": 3, "api": 3, "stream": 2, "snapshot": 1}


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One bar of ``tf`` starting at ``ts`` (UTC); vwap and transactions when known."""

    symbol: str
    tf: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float | None = None
    transactions: int | None = None


def ms_to_utc(ms: int) -> datetime:
    """Epoch milliseconds (Polygon REST/WebSocket) to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
