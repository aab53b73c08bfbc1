"""Envelope v1: the seed's standard bar message, byte-stable, serialized with orjson.

The shape is a public contract of the bar topics, Redis and downstream
consumers: anything new goes under ``features`` or into a new ``version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from chronox_stream.bars import SOURCE_RANK, Bar, Source

VERSION = "v1"


def format_ts(ts: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC, the only timestamp form an envelope carries."""
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def parse_ts(text: str) -> datetime:
    """The UTC moment of a ``YYYY-MM-DDTHH:MM:SSZ`` string; ``ValueError`` for any other form."""
    if len(text) != 20 or text[10] != "T" or text[19] != "Z":
        raise ValueError(f"timestamp {text!r} is not YYYY-MM-DDTHH:MM:SSZ")
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)


def dedup_key_of(bar: Bar) -> str:
    """``SYMBOL|tf|ts`` of a bar: the key its envelope will carry."""
    return f"{bar.symbol}|{bar.tf}|{format_ts(bar.ts)}"


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
        """The wire form, with keys in the seed's order."""
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


def _require_number(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number")


def _checked(raw: bytes) -> dict[str, Any]:
    """The document of a v1 bar envelope; ``ValueError`` (or ``KeyError``) if it is not one.

    Checked here, not by the database: a value PostgreSQL refuses would stall the sink.
    """
    doc = orjson.loads(raw)
    if not isinstance(doc, dict) or doc.get("version") != VERSION or doc.get("event") != "bar":
        raise ValueError("not a v1 bar envelope")
    symbol, tf, ts = doc["symbol"], doc["tf"], doc["ts"]
    if doc.get("dedup_key") != f"{symbol}|{tf}|{ts}":
        raise ValueError("dedup_key does not match symbol|tf|ts")
    if not isinstance(symbol, str) or not isinstance(tf, str):
        raise ValueError("symbol and tf must be strings")
    if doc["source"] not in SOURCE_RANK:
        raise ValueError(f"unknown source {doc['source']!r}")
    ohlcv = doc["ohlcv"]
    for name in OHLCV:
        _require_number(ohlcv[name], name)
    features = doc.get("features") or {}
    if not isinstance(features, dict):
        raise ValueError("features must be an object")
    for name in ("vwap", "transactions"):
        if features.get(name) is not None:
            _require_number(features[name], name)
    return doc


def decode_envelope(raw: bytes) -> Envelope:
    """Parse a v1 envelope; ``ValueError`` if it is not one (wrong version, key, shape)."""
    doc = _checked(raw)
    parse_ts(doc["ts"])
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
    doc = _checked(raw)
    ohlcv = doc["ohlcv"]
    features = doc.get("features") or {}
    bar = Bar(
        symbol=doc["symbol"],
        tf=doc["tf"],
        ts=parse_ts(doc["ts"]),
        open=ohlcv["open"],
        high=ohlcv["high"],
        low=ohlcv["low"],
        close=ohlcv["close"],
        volume=ohlcv["volume"],
        vwap=features.get("vwap"),
        transactions=features.get("transactions"),
    )
    return bar, doc["source"]
