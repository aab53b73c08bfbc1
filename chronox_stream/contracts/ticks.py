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
when known. Every value is bounded (:mod:`chronox_stream.domain.bounds`): one beyond a
bound is refused as ``out_of_range`` here, not left to fail the aggregator.

The topic carries one other kind of record, a feed marker (:class:`FeedMarker`)::

    {"symbol": "AAPL", "complete_from": 1705329000124}

It says that the producer's feed of the symbol holds every trade from
``complete_from`` (epoch ms, SIP time) on: the tick aggregator emits no bar of a
window starting earlier from ticks alone. A producer that sends no marker is
trusted to be complete.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from chronox_stream.contracts.control import is_symbol
from chronox_stream.contracts.rejects import Rejected, decode_object
from chronox_stream.domain.bounds import (
    INT64_MAX,
    MAX_CONDITION,
    MAX_CONDITIONS,
    MAX_PRICE,
    MAX_TRADE_ID_LENGTH,
    MAX_TRADE_VALUE,
)

FIELDS = frozenset({"symbol", "ts", "price", "size", "conditions", "exchange", "id", "sequence"})
MARKER_FIELDS = frozenset({"symbol", "complete_from"})
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


_new = tuple.__new__  # a named tuple's own constructor is a Python function: skipped per tick


@lru_cache(maxsize=65_536)
def _known_symbol(value: str) -> bool:
    """``is_symbol`` remembered: a feed repeats a few thousand symbols millions of times."""
    return is_symbol(value)


def tick_from_doc(doc: dict[str, Any]) -> Tick:
    """A tick from a raw-ticks object holding only known fields; ``Rejected`` (a
    ``ValueError``) says what is wrong with a value, with a reason code.

    Written for speed (it runs once per trade): one exact type check and one chained
    comparison per field on the good path (the bounds of :mod:`chronox_stream.domain.bounds`);
    :func:`_refusal` works out the reason only for a value that failed them.
    """
    get = doc.get  # bound once: eight lookups per tick
    symbol = get("symbol")
    if type(symbol) is not str or not _known_symbol(symbol):
        raise _refusal("symbol", symbol)
    ts = get("ts")
    if type(ts) is not int or not TS_RANGE_MS[0] <= ts < TS_RANGE_MS[1]:
        raise _refusal("ts", ts)
    price = get("price")
    if type(price) is int:
        price = float(price) if price <= INT64_MAX else math.inf
    if type(price) is not float or not 0.0 < price <= MAX_PRICE:  # NaN fails it too
        raise _refusal("price", price)
    size = get("size")
    if type(size) is not int or not 0 <= size <= INT64_MAX or price * size > MAX_TRADE_VALUE:
        raise _refusal("size", size)
    listed = get("conditions")
    conditions: tuple[int, ...] = ()
    if listed is not None:
        if type(listed) is not list or len(listed) > MAX_CONDITIONS:
            raise _refusal("conditions", listed)
        for condition in listed:
            if type(condition) is not int or not 0 <= condition <= MAX_CONDITION:
                raise _refusal("condition", condition)
        conditions = tuple(listed)
    exchange = get("exchange")
    if exchange is not None and (type(exchange) is not int or not 0 <= exchange <= INT64_MAX):
        raise _refusal("exchange", exchange)
    trade_id = get("id")
    if trade_id is not None and (type(trade_id) is not str or len(trade_id) > MAX_TRADE_ID_LENGTH):
        raise _refusal("id", trade_id)
    sequence = get("sequence")
    if sequence is not None and (type(sequence) is not int or not 0 <= sequence <= INT64_MAX):
        raise _refusal("sequence", sequence)
    return _new(Tick, (symbol, ts, price, size, conditions, exchange, trade_id, sequence))


#: Per field checked by :func:`_refusal`: its type, what it must be, and its range.
_RULES: dict[str, tuple[type, str, str]] = {
    "ts": (int, "a whole number", f"epoch milliseconds from {TS_RANGE_MS[0]} to {TS_RANGE_MS[1]}"),
    "price": (float, "a number > 0", f"at most {MAX_PRICE:,.0f}"),
    "size": (int, "a whole number >= 0", f"<= 2**63-1, price x size <= {MAX_TRADE_VALUE:,.0f}"),
    "conditions": (list, "a list of whole numbers", f"at most {MAX_CONDITIONS} of them"),
    "condition": (int, "a whole number", f"0 to {MAX_CONDITION}"),
    "exchange": (int, "a whole number", f"0 to {INT64_MAX}"),
    "id": (str, "a string", f"at most {MAX_TRADE_ID_LENGTH} characters"),
    "sequence": (int, "a whole number", f"0 to {INT64_MAX}"),
}


def _refusal(field: str, value: Any) -> Rejected:
    """Why ``value`` of ``field`` failed the checks of :func:`tick_from_doc`."""
    if value is None and field in ("symbol", "ts", "price", "size"):
        return Rejected("missing_field", f"field {field!r} is required")
    if field == "symbol":
        return Rejected("invalid_symbol", f"invalid symbol {str(value)[:40]!r}")
    kind, noun, rule = _RULES[field]
    if (field == "price" and type(value) is float and value <= 0) or (
        field == "size" and type(value) is int and value < 0
    ):
        return Rejected("invalid_value", f"{field} must be {noun}")
    if type(value) is not kind:  # exactly: a bool is no whole number here
        return Rejected("invalid_type", f"{field} must be {noun}")
    shown = len(value) if isinstance(value, list | str) else value
    return Rejected("out_of_range", f"{field} {str(shown)[:40]} is out of range: {rule}")


def _object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object ``raw`` holds, else ``None`` (other JSON, or no JSON at all)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if type(doc) is dict else None


def parse_tick(raw: bytes) -> Tick:
    """A tick from a raw-ticks message value; ``Rejected`` (with a reason code) for
    anything else, whatever the bytes."""
    found = _object(raw)
    if found is not None and found.keys() <= FIELDS:
        return tick_from_doc(found)
    return tick_from_doc(decode_object(raw, FIELDS, "tick"))  # says what is wrong, and raises


class FeedMarker(NamedTuple):
    """A feed of ``symbol`` is complete from ``complete_from`` (epoch ms, SIP time) on."""

    symbol: str
    complete_from: int

    def to_json(self) -> bytes:
        return orjson.dumps({"symbol": self.symbol, "complete_from": self.complete_from})


def parse_raw(raw: bytes) -> Tick | FeedMarker:
    """A raw-ticks record: a tick, or a feed marker (an object with ``complete_from``);
    ``Rejected`` (with a reason code) for anything else, whatever the bytes."""
    try:  # :func:`_object`, inlined: this runs once per record of the raw ticks topic
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        found = None
    if type(found) is not dict:
        found = None
    elif found.keys() <= FIELDS:  # a tick: the fast path, one decode
        return tick_from_doc(found)
    if found is None or "complete_from" not in found:
        return tick_from_doc(decode_object(raw, FIELDS, "tick"))  # says what is wrong, and raises
    doc = decode_object(raw, MARKER_FIELDS, "feed marker")
    symbol = doc.get("symbol")
    if type(symbol) is not str or not _known_symbol(symbol):
        raise _refusal("symbol", symbol)
    at = doc["complete_from"]
    if type(at) is not int:
        raise Rejected("invalid_type", "complete_from must be a whole number")
    if not TS_RANGE_MS[0] <= at < TS_RANGE_MS[1]:
        raise Rejected("out_of_range", f"complete_from {str(at)[:40]} is out of range: "
                       f"{_RULES['ts'][2]}")  # fmt: skip
    return FeedMarker(symbol, at)


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
