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

from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from chronox_stream.control import is_symbol
from chronox_stream.rejects import decode_object

FIELDS = frozenset({"symbol", "ts", "price", "size", "conditions", "exchange", "id", "sequence"})
#: 2000-01-01 and 2100-01-01 in epoch ms: a ``ts`` outside is in seconds or nanoseconds.
TS_RANGE_MS = (946_684_800_000, 4_102_444_800_000)


class Tick(NamedTuple):
    """One trade of ``symbol`` at ``ts`` (epoch ms, SIP time).

    A named tuple, not a frozen dataclass: one is made per trade, tens of thousands a
    second, and a frozen dataclass takes five times as long to make.
    """

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


@lru_cache(maxsize=65_536)
def _known_symbol(value: str) -> bool:
    """``is_symbol`` remembered: a feed repeats a few thousand symbols millions of times."""
    return is_symbol(value)


def _whole(value: Any, what: str) -> int:
    if type(value) is not int:  # bool is an int subclass, and no whole number here
        raise ValueError(f"{what} must be a whole number")
    return value


def tick_from_doc(doc: dict[str, Any]) -> Tick:
    """A tick from a raw-ticks object holding only known fields; ``ValueError`` says what
    is wrong with a value.

    Written for speed (it runs once per trade): exact type checks, no helper per field.
    """
    symbol = doc.get("symbol")
    if type(symbol) is not str or not _known_symbol(symbol):
        raise ValueError(f"invalid symbol {symbol!r}")
    ts = _whole(doc.get("ts"), "ts")
    if not TS_RANGE_MS[0] <= ts < TS_RANGE_MS[1]:
        raise ValueError(f"ts {ts} is not epoch milliseconds")
    price = doc.get("price")
    if type(price) is int:
        price = float(price)
    elif type(price) is not float:
        raise ValueError("price must be a number > 0")
    if not price > 0:
        raise ValueError("price must be a number > 0")
    size = _whole(doc.get("size"), "size")
    if size < 0:
        raise ValueError("size must be >= 0")
    listed = doc.get("conditions")
    conditions: tuple[int, ...] = ()
    if listed:
        if type(listed) is not list:
            raise ValueError("conditions must be a list of whole numbers")
        for condition in listed:
            _whole(condition, "a condition")
        conditions = tuple(listed)
    exchange = doc.get("exchange")
    if exchange is not None:
        _whole(exchange, "exchange")
    trade_id = doc.get("id")
    if trade_id is not None and type(trade_id) is not str:
        raise ValueError("id must be a string")
    sequence = doc.get("sequence")
    if sequence is not None:
        _whole(sequence, "sequence")
    return Tick(symbol, ts, price, size, conditions, exchange, trade_id, sequence)


def parse_tick(raw: bytes) -> Tick:
    """A tick from a raw-ticks message value; ``ValueError`` (``Rejected``, with a reason
    code) for anything else."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if type(doc) is dict and doc.keys() <= FIELDS:
        return tick_from_doc(doc)
    return tick_from_doc(decode_object(raw, FIELDS, "tick"))  # says what is wrong, and raises


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
