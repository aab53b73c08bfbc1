"""Trades as they travel on the raw ticks topic (pure): the model, its JSON, Polygon's ``T``.

The raw ticks topic is a public contract: our WebSocket client is one producer
of it and any other feed may be another. A message is keyed by symbol and its
value is one JSON object::

    {"symbol": "AAPL", "ts": 1705329000123, "price": 150.25, "size": 100,
     "conditions": [14, 37], "exchange": 4, "id": "52983525029461", "sequence": 1063}

``ts`` is the SIP timestamp in epoch milliseconds; ``price`` > 0; ``size`` a
whole number >= 0; ``conditions`` SIP sale conditions (may be empty or absent);
``exchange``, ``id`` and ``sequence`` are optional. Ties in ``ts`` are ordered
by ``sequence`` (Polygon's per-symbol sequence number), so it should be given
when known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from chronox_stream.control import is_symbol
from chronox_stream.rejects import decode_object

FIELDS = frozenset({"symbol", "ts", "price", "size", "conditions", "exchange", "id", "sequence"})
#: 2000-01-01 and 2100-01-01 in epoch ms: a ``ts`` outside is in seconds or nanoseconds.
TS_RANGE_MS = (946_684_800_000, 4_102_444_800_000)


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade of ``symbol`` at ``ts`` (epoch ms, SIP time)."""

    symbol: str
    ts: int
    price: float
    size: int
    conditions: tuple[int, ...] = ()
    exchange: int | None = None
    trade_id: str | None = None
    sequence: int | None = None

    @property
    def order(self) -> tuple[int, int]:
        """Position in SIP order: time, then sequence number."""
        return (self.ts, self.sequence if self.sequence is not None else -1)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "symbol": self.symbol,
            "ts": self.ts,
            "price": self.price,
            "size": self.size,
            "conditions": list(self.conditions),
        }
        if self.exchange is not None:
            doc["exchange"] = self.exchange
        if self.trade_id is not None:
            doc["id"] = self.trade_id
        if self.sequence is not None:
            doc["sequence"] = self.sequence
        return orjson.dumps(doc)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be a whole number")
    return value


def _optional_int(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, what)


def tick_from_doc(doc: dict[str, Any]) -> Tick:
    """A tick from a raw-ticks object holding only known fields; ``ValueError`` says what
    is wrong with a value."""
    symbol = doc.get("symbol")
    if not is_symbol(symbol):
        raise ValueError(f"invalid symbol {symbol!r}")
    ts = _int(doc.get("ts"), "ts")
    if not TS_RANGE_MS[0] <= ts < TS_RANGE_MS[1]:
        raise ValueError(f"ts {ts} is not epoch milliseconds")
    price = doc.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float) or not price > 0:
        raise ValueError("price must be a number > 0")
    size = _int(doc.get("size"), "size")
    if size < 0:
        raise ValueError("size must be >= 0")
    conditions = doc.get("conditions") or []
    if not isinstance(conditions, list):
        raise ValueError("conditions must be a list of whole numbers")
    trade_id = doc.get("id")
    if trade_id is not None and not isinstance(trade_id, str):
        raise ValueError("id must be a string")
    return Tick(
        symbol=symbol,
        ts=ts,
        price=float(price),
        size=size,
        conditions=tuple(_int(c, "a condition") for c in conditions),
        exchange=_optional_int(doc.get("exchange"), "exchange"),
        trade_id=trade_id,
        sequence=_optional_int(doc.get("sequence"), "sequence"),
    )


def parse_tick(raw: bytes) -> Tick:
    """A tick from a raw-ticks message value; ``ValueError`` (``Rejected``, with a reason
    code) for anything else."""
    return tick_from_doc(decode_object(raw, FIELDS, "tick"))


def tick_from_polygon(event: dict[str, Any]) -> Tick:
    """A tick from Polygon's WebSocket ``T`` event (``sym, x, i, p, s, c, t, q``)."""
    if event.get("ev") != "T":
        raise ValueError(f"not a trade event: {event.get('ev')!r}")
    return tick_from_doc(
        {
            "symbol": event.get("sym"),
            "ts": event.get("t"),
            "price": event.get("p"),
            "size": event.get("s"),
            "conditions": event.get("c") or [],
            "exchange": event.get("x"),
            "id": event.get("i"),
            "sequence": event.get("q"),
        }
    )
