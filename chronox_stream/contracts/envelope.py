"""Envelope v1: the bar message of the bar topics and Redis, byte-stable, serialized with orjson.

The shape is a public contract of the bar topics, Redis and downstream
consumers: anything new goes under ``features`` or into a new ``version``. Any
producer may write the bar topics, so decoding checks every value the sinks
store (:func:`decode_bar`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from chronox_stream.contracts.control import is_symbol
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import SOURCE_RANK, Bar, Source
from chronox_stream.domain.bounds import INT64_MAX, MAX_PRICE, is_amount, is_count, is_price
from chronox_stream.domain.timeframes import TIMEFRAMES

VERSION = "v1"


@lru_cache(maxsize=4096)
def format_ts(ts: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC, the only timestamp form an envelope carries.

    Remembered (for a few thousand moments), as is :func:`parse_ts`: a market's bars of
    one window share their start, and each bar's is formatted and parsed several times
    on its way (envelope, ``ticks.bars`` hop, bar topics, sinks)."""
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


_TS_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


@lru_cache(maxsize=4096)
def parse_ts(text: str) -> datetime:
    """The UTC moment of a ``YYYY-MM-DDTHH:MM:SSZ`` string; ``ValueError`` for any other form."""
    if _TS_FORM.fullmatch(text) is None:
        raise ValueError(f"timestamp {text[:40]!r} is not YYYY-MM-DDTHH:MM:SSZ")
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)




@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A bar wrapped for publication; ``dedup_key`` identifies the bar across sources."""

    symbol: str
    tf: str
    ts: str
    ohlcv: dict[str, float]
    features: dict[str, Any] = field(default_factory=dict)
    source: Source
    event: str = "bar"
    version: str = VERSION

    @property
    def dedup_key(self) -> str:
        """``SYMBOL|tf|ts``: one key per bar, whatever its source or revision."""
        return f"{self.symbol}|{self.tf}|{self.ts}"

    def to_json(self) -> bytes:
        """The wire form, with keys in the order of the README's Envelope v1 section."""
        return orjson.dumps(
            {
                "event": self.event,
                "symbol": self.symbol,
                "tf": self.tf,
                "ts": self.ts,
                "ohlcv": self.ohlcv,
                "features": self.features,
                "source": self.source,
                "version": self.version,
                "dedup_key": self.dedup_key,
            }
        )


def envelope_for(bar: Bar, source: Source) -> Envelope:
    """Wrap ``bar``; vwap and transactions go under ``features`` only when known."""
    features: dict[str, Any] = {}
    if bar.vwap is not None:
        features["vwap"] = bar.vwap
    if bar.transactions is not None:
        features["transactions"] = bar.transactions
    return Envelope(
        symbol=bar.symbol,
        tf=bar.tf,
        ts=format_ts(bar.ts),
        ohlcv={
            "open": bar.open,
            "high": bar.high,
            "low": bar.low,
            "close": bar.close,
            "volume": bar.volume,
        },
        features=features,
        source=source,
    )


OHLCV = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
#: Bars start from 1970 to 2100: PostgreSQL takes any of them, and none is in seconds or ns.
TS_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _refused(message: str) -> Rejected:
    return Rejected("invalid_envelope", message)


def _number(value: Any) -> bool:
    """An int or a float (a bool is neither here)."""
    return type(value) is float or type(value) is int


def _checked(raw: bytes) -> tuple[dict[str, Any], datetime]:
    """The document of a v1 bar envelope and its ``ts``; ``Rejected("invalid_envelope")``
    naming the first defect otherwise, whatever the bytes.

    Checked here, not by the database: a value PostgreSQL refuses (a NUL byte in a symbol,
    a count beyond ``bigint``) would fail its batch on every retry and stall the sink. The
    rules are those of requests and ticks: the symbol rule, a known ``tf``, ``ts`` in the
    one form and from 1970 to 2100, prices > 0 and at most ``MAX_PRICE``, a finite volume
    >= 0, ``vwap`` from 0 to ``MAX_PRICE``, ``transactions`` a whole number in int64.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _refused(f"not JSON: {exc}") from None
    if type(doc) is not dict or doc.get("version") != VERSION or doc.get("event") != "bar":
        raise _refused("not a v1 bar envelope (event 'bar', version 'v1')")
    symbol, tf, text = doc.get("symbol"), doc.get("tf"), doc.get("ts")
    if not is_symbol(symbol):
        raise _refused(f"invalid symbol {str(symbol)[:40]!r}")
    if type(tf) is not str or tf not in TIMEFRAMES:
        raise _refused(f"unknown tf {str(tf)[:40]!r}; expected one of {', '.join(TIMEFRAMES)}")
    try:
        ts = parse_ts(text if type(text) is str else "")
    except ValueError:
        raise _refused(f"ts {str(text)[:40]!r} is not YYYY-MM-DDTHH:MM:SSZ") from None
    if not TS_RANGE[0] <= ts < TS_RANGE[1]:
        raise _refused(f"ts {text} is out of range (1970 to 2100)")
    if doc.get("dedup_key") != f"{symbol}|{tf}|{text}":
        raise _refused("dedup_key does not match symbol|tf|ts")
    source = doc.get("source")
    if type(source) is not str or source not in SOURCE_RANK:
        raise _refused(f"unknown source {str(source)[:40]!r}")
    _check_numbers(doc.get("ohlcv"), doc.get("features"))
    return doc, ts


def _check_numbers(ohlcv: Any, features: Any) -> None:
    if type(ohlcv) is not dict:
        raise _refused("ohlcv must be an object")
    for name in PRICES:
        if not _number(ohlcv.get(name)) or not is_price(ohlcv[name]):
            raise _refused(f"{name} must be a number > 0 and at most {MAX_PRICE:,.0f}")
    if not _number(ohlcv.get("volume")) or not is_amount(ohlcv["volume"]):
        raise _refused("volume must be a finite number >= 0")
    if features is None:
        return
    if type(features) is not dict:
        raise _refused("features must be an object")
    vwap = features.get("vwap")
    if vwap is not None and (not _number(vwap) or not 0 <= vwap <= MAX_PRICE):
        raise _refused(f"vwap must be a number from 0 to {MAX_PRICE:,.0f}")
    transactions = features.get("transactions")
    if transactions is not None and (type(transactions) is not int or not is_count(transactions)):
        raise _refused(f"transactions must be a whole number from 0 to {INT64_MAX}")


def decode_envelope(raw: bytes) -> Envelope:
    """Parse a v1 envelope; ``Rejected("invalid_envelope")`` if it is not a valid one."""
    doc, _ = _checked(raw)
    return Envelope(
        symbol=doc["symbol"],
        tf=doc["tf"],
        ts=doc["ts"],
        ohlcv={k: doc["ohlcv"][k] for k in OHLCV},
        features=dict(doc.get("features") or {}),
        source=doc["source"],
    )


def decode_bar(raw: bytes) -> tuple[Bar, Source]:
    """The bar a v1 envelope carries and its source, checked as by :func:`decode_envelope`.

    The sinks' path: one pass from bytes to the bar, without an ``Envelope`` in between.
    """
    doc, ts = _checked(raw)
    ohlcv = doc["ohlcv"]
    features = doc.get("features") or {}
    bar = Bar(
        symbol=doc["symbol"],
        tf=doc["tf"],
        ts=ts,
        open=ohlcv["open"],
        high=ohlcv["high"],
        low=ohlcv["low"],
        close=ohlcv["close"],
        volume=ohlcv["volume"],
        vwap=features.get("vwap"),
        transactions=features.get("transactions"),
    )
    return bar, doc["source"]
