"""Dedup before emit (pure): what was emitted per dedup_key, and whether a new bar may pass.

The state per key is 9 bytes (an 8-byte content digest and the source rank), so
the dedup table stays small in RocksDB however many bars it has seen. The rule
is the source precedence of ``precedence.wins``, judged on digests.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from chronox_stream.bars import SOURCE_RANK, Bar, Source
from chronox_stream.precedence import wins

_PACK = struct.Struct(">8sB")


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
