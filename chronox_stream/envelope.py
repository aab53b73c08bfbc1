"""Envelope v1: the seed's standard bar message, byte-stable, serialized with orjson.

The shape is a public contract of the bar topics, Redis and downstream
consumers: anything new goes under ``features`` or into a new ``version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from chronox_stream.bars import Bar, Source

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


def decode_envelope(raw: bytes) -> Envelope:
    """Parse a v1 envelope; ``ValueError`` if it is not one (wrong version, key, shape)."""
    doc = orjson.loads(raw)
    if not isinstance(doc, dict) or doc.get("version") != VERSION or doc.get("event") != "bar":
        raise ValueError("not a v1 bar envelope")
    envelope = Envelope(
        symbol=doc["symbol"],
        tf=doc["tf"],
        ts=doc["ts"],
        ohlcv={k: doc["ohlcv"][k] for k in ("open", "high", "low", "close", "volume")},
        features=dict(doc.get("features") or {}),
        source=doc["source"],
    )
    if doc.get("dedup_key") != envelope.dedup_key:
        raise ValueError("dedup_key does not match symbol|tf|ts")
    parse_ts(envelope.ts)
    return envelope


def bar_from_envelope(envelope: Envelope) -> Bar:
    """The bar an envelope carries (used by sinks)."""
    return Bar(
        symbol=envelope.symbol,
        tf=envelope.tf,
        ts=parse_ts(envelope.ts),
        open=envelope.ohlcv["open"],
        high=envelope.ohlcv["high"],
        low=envelope.ohlcv["low"],
        close=envelope.ohlcv["close"],
        volume=envelope.ohlcv["volume"],
        vwap=envelope.features.get("vwap"),
        transactions=envelope.features.get("transactions"),
    )
