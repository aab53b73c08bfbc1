"""The OHLCV bar as it flows through the pipeline (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

# The sources and their ranks are declared in ``domain.sources``; named here too, beside the bar.
from chronox_stream.domain.sources import SOURCE_RANK as SOURCE_RANK
from chronox_stream.domain.sources import Source as Source


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
