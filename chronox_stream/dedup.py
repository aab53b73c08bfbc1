"""Dedup before emit (pure): what was emitted per dedup_key, and whether a new bar may pass.

What was emitted for a bar is 9 bytes (an 8-byte content digest and the source
rank); the rule is the source precedence of ``precedence.wins``, judged on
digests. The table groups them in buckets, one value per symbol, timeframe and
UTC day (per year for day bars): one read and one changelog write per chunk of
bars instead of one per bar, and values stay a few kilobytes.

A bucket value starts with the wall-clock time it was last written (a version
byte and epoch ms), so that buckets nobody wrote for the state horizon can be
purged (:func:`stale_buckets`), whatever the time of their bars: a backfill of
2015 keeps deduplicating for the horizon after it ran. Values written before the
stamp existed (entries only) are still read.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from chronox_stream.bars import SOURCE_RANK, Bar, Source
from chronox_stream.precedence import wins

_PACK = struct.Struct(">8sB")
_ENTRY = struct.Struct(">q8sB")
_STAMP = struct.Struct(">Bq")  # version 1, written at (epoch ms)
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Emitted:
    """What was last emitted for one dedup_key."""

    digest: bytes
    rank: int

    def to_bytes(self) -> bytes:
        return _PACK.pack(self.digest, self.rank)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Emitted:
        digest, rank = _PACK.unpack(raw)
        return cls(digest, rank)


def content_digest(bar: Bar) -> bytes:
    """8 bytes identifying a bar's values (not its source); equal bars, equal digests."""
    text = repr((bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.transactions))
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def admit(previous: Emitted | None, bar: Bar, source: Source) -> Emitted | None:
    """The new state if ``bar`` from ``source`` is to be emitted; ``None`` to drop it."""
    current = Emitted(content_digest(bar), SOURCE_RANK[source])
    if previous is None:
        return current
    if wins(previous.digest == current.digest, previous.rank, current.rank):
        return current
    return None


Bucket = dict[int, Emitted]
"""What was emitted in one bucket, by bar start in epoch seconds."""


def bucket_key(bar: Bar) -> str:
    """``SYMBOL|tf|YYYY-MM-DD`` (``SYMBOL|1d|YYYY`` for day bars): where a bar's state lives."""
    period = str(bar.ts.year) if bar.tf == "1d" else bar.ts.date().isoformat()
    return f"{bar.symbol}|{bar.tf}|{period}"


def written_at(raw: bytes) -> int | None:
    """When the bucket ``raw`` was last written (wall clock, epoch ms); ``None`` for a value
    from before the stamp (its length is a whole number of entries, a stamped one's not)."""
    if len(raw) % _ENTRY.size != _STAMP.size:
        return None
    _, stamp = _STAMP.unpack_from(raw)
    return int(stamp)


def decode_bucket(raw: bytes | None) -> Bucket:
    if not raw:
        return {}
    first = _STAMP.size if len(raw) % _ENTRY.size == _STAMP.size else 0
    return {
        ts: Emitted(digest, rank)
        for ts, digest, rank in (
            _ENTRY.unpack_from(raw, o) for o in range(first, len(raw), _ENTRY.size)
        )
    }


def encode_bucket(bucket: Bucket, written_ms: int) -> bytes:
    """``bucket`` stamped as written at ``written_ms`` (wall clock, epoch ms)."""
    entries = (_ENTRY.pack(ts, e.digest, e.rank) for ts, e in sorted(bucket.items()))
    return _STAMP.pack(_VERSION, written_ms) + b"".join(entries)


def restamped(raw: bytes, written_ms: int) -> bytes:
    """``raw`` (stamped or not) with the stamp ``written_ms`` and the same entries."""
    return encode_bucket(decode_bucket(raw), written_ms)


def bucket_symbol(key: str) -> str:
    """The symbol of a bucket key (``SYMBOL|tf|period``)."""
    return key.split("|", 1)[0]


def stale_buckets(
    values: Iterable[tuple[str, bytes]], now_ms: int, horizon_ms: int
) -> tuple[list[str], list[str]]:
    """The keys of ``values`` to purge (last written more than ``horizon_ms`` before
    ``now_ms``) and those without a stamp (from before it: to be stamped now, so that
    they are purged one horizon later, never at once)."""
    stale: list[str] = []
    unstamped: list[str] = []
    for key, raw in values:
        stamp = written_at(raw)
        if stamp is None:
            unstamped.append(key)
        elif now_ms - stamp > horizon_ms:
            stale.append(key)
    return stale, unstamped


def admit_batch(
    bars: list[Bar], source: Source, buckets: dict[str, Bucket]
) -> tuple[list[Bar], dict[str, Bucket]]:
    """The bars to emit and the buckets as they will be once they are.

    ``buckets`` holds the current state of every bucket the bars fall in; it is
    not changed. A bar repeated within ``bars`` is judged against the earlier one.
    """
    updated: dict[str, Bucket] = {}
    admitted: list[Bar] = []
    for bar in bars:
        key = bucket_key(bar)
        bucket = updated.get(key)
        if bucket is None:
            bucket = updated[key] = dict(buckets.get(key, {}))
        ts = int(bar.ts.timestamp())
        state = admit(bucket.get(ts), bar, source)
        if state is not None:
            bucket[ts] = state
            admitted.append(bar)
    return admitted, updated
