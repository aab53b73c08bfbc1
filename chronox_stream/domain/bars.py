"""The OHLCV bar as it flows through the pipeline (pure)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

# The sources and their ranks are declared in ``domain.sources``; named here too, beside the bar.


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


#: Each field's slot setter, in declaration order: :func:`new_bar` fills a bar with them.
_SETTERS = tuple(getattr(Bar, f.name).__set__ for f in fields(Bar))
_new = object.__new__


def new_bar(
    symbol: str, tf: str, ts: datetime, open_: float, high: float, low: float, close: float,
    volume: float, vwap: float | None = None, transactions: int | None = None,
) -> Bar:  # fmt: skip
    """The same bar as ``Bar(symbol=symbol, ..., transactions=transactions)``, in two
    fifths of the time: the parsers make one per row of a day file, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` lookup and call per field) costs
    about 2 µs, a fair share of the backfill's CPU per bar. ``Bar`` has no
    ``__post_init__``, so filling its slots directly skips nothing."""
    bar = _new(Bar)
    s_symbol, s_tf, s_ts, s_open, s_high, s_low, s_close, s_volume, s_vwap, s_tx = _SETTERS
    s_symbol(bar, symbol)
    s_tf(bar, tf)
    s_ts(bar, ts)
    s_open(bar, open_)
    s_high(bar, high)
    s_low(bar, low)
    s_close(bar, close)
    s_volume(bar, volume)
    s_vwap(bar, vwap)
    s_tx(bar, transactions)
    return bar


def ms_to_utc(ms: int) -> datetime:
    """Epoch milliseconds (Polygon REST/WebSocket) to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
