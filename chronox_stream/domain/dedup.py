"""Dedup before emit (pure): what was emitted per dedup_key, and whether a new bar may pass.

What was emitted for a bar is an 8-byte digest of its OHLCV (``identity.ohlcv_digest``: the
one definition of equal values, shared with precedence and SQL), its source rank, and the
optional fields it had (vwap, transactions) with their values; the rule is
``precedence``'s (same, enrichment, poorer, correction, judged with the ranks), so a bar
that only adds vwap to a flat-file bar passes as an enrichment, and one that lacks a
field the emitted bar had is dropped. The table groups them in buckets, one value per
symbol, timeframe and UTC day (per year for day bars): one read and one changelog
write per chunk of bars instead of one per bar, and values stay a few kilobytes.

A bucket value starts with a version byte and the wall-clock time it was last written
(epoch ms), so that buckets nobody wrote for the state horizon can be purged
(:func:`stale_buckets`), whatever the time of their bars: a backfill of 2015 keeps
deduplicating for the horizon after it ran. Version 3 (written now) holds per bar its
start (epoch seconds, 8 bytes: any time a source may send), the OHLCV digest, a byte of
rank and flags, then the vwap (8 bytes) and the transactions (8 bytes) when the bar had
them. Version 2 values are the same but for the digest, of the ``repr`` of the values
(``identity.repr_digest``) where version 3's is of the packed doubles: their entries keep
that digest, flagged, and are judged by it until a bar of the same key replaces them.
Version 1 values (an 8-byte digest of all values and the rank per bar) and values from
before the stamp (version 1 entries only) are still read: their entries are judged by the
rule they were written under (equal digests are the same bar, anything else a correction)
until a bar of the same key replaces them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.identity import (
    Features,
    features_of,
    number,
    ohlcv_digest,
    repr_digest,
)
from chronox_stream.domain.precedence import Relation, admits, filled, relation
from chronox_stream.domain.sources import SOURCE_RANK, Source

_STAMP = struct.Struct(">Bq")  # version, written at (epoch ms)
_V1_ENTRY = struct.Struct(">q8sB")  # bar start (s), digest of all values, rank
_V1 = 1
_ENTRY = struct.Struct(">q8sB")  # bar start (s), OHLCV digest, rank | flags
_VWAP = struct.Struct(">d")
_TRANSACTIONS = struct.Struct(">q")
# An entry with its vwap, its transactions, or both: big-endian structs have no padding,
# so each packs the bytes of ``_ENTRY`` followed by those of ``_VWAP`` and ``_TRANSACTIONS``.
_ENTRY_V = struct.Struct(">q8sBd")
_ENTRY_T = struct.Struct(">q8sBq")
_ENTRY_VT = struct.Struct(">q8sBdq")
_V2 = 2
_VERSION = 3
_RANK_MASK = 0x0F
_HAS_VWAP = 0x10
_HAS_TRANSACTIONS = 0x20
_LEGACY = 0x40  # the digest is version 1's, of all values; no fields known
_REPR = 0x80  # the OHLCV digest is version 2's (identity.repr_digest)


class Emitted(NamedTuple):
    """What was last emitted for one dedup_key (a named tuple: one is made per bar judged,
    at a third of a frozen dataclass's cost).

    ``digest`` is the OHLCV digest (``identity.ohlcv_digest``; ``identity.repr_digest``
    for a ``v2_digest`` entry, read from a version 2 bucket), or for a ``legacy`` entry (read
    from a version 1 bucket) the digest of all values, with no fields known apart from it.
    """

    digest: bytes
    rank: int
    vwap: float | None = None
    transactions: int | None = None
    legacy: bool = False
    v2_digest: bool = False

    @property
    def features(self) -> Features:
        return Features(self.vwap, self.transactions)


def legacy_digest(bar: Bar) -> bytes:
    """Version 1's 8-byte digest of all of a bar's values, to judge a version 1 entry."""
    text = repr((bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.transactions))
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def emitted_of(bar: Bar, source: Source) -> Emitted:
    """What emitting ``bar`` from ``source`` records (its fields as ``features_of`` has them)."""
    vwap, transactions = bar.vwap, bar.transactions
    return Emitted(ohlcv_digest(bar), SOURCE_RANK[source],
                   None if vwap is None else number(vwap),
                   None if transactions is None else int(transactions))  # fmt: skip


def judge(previous: Emitted, bar: Bar, digest: bytes | None = None) -> Relation:
    """How ``bar`` (whose ``ohlcv_digest`` is ``digest``, when known) relates to what was
    emitted (see ``precedence.relation``)."""
    if previous.legacy:
        return "same" if previous.digest == legacy_digest(bar) else "correction"
    if previous.v2_digest:
        same = previous.digest == repr_digest(bar)
    else:
        same = previous.digest == (ohlcv_digest(bar) if digest is None else digest)
    return relation(same, previous.features, features_of(bar))


def admit(previous: Emitted | None, bar: Bar, source: Source) -> Emitted | None:
    """The new state if ``bar`` from ``source`` is to be emitted; ``None`` to drop it.

    After a correction (or over a legacy entry) the state is the new bar's; after an
    enrichment or a promotion it keeps the emitted OHLCV (and its digest's kind) and gains
    the missing fields.
    """
    current = emitted_of(bar, source)
    if previous is None:
        return current
    rel = judge(previous, bar, current.digest)
    if not admits(rel, previous.rank, current.rank):
        return None
    if rel == "correction" or previous.legacy:
        return current
    fields = filled(previous.features, current.features)
    return Emitted(previous.digest, current.rank, fields.vwap, fields.transactions,
                   v2_digest=previous.v2_digest)  # fmt: skip


Bucket = dict[int, Emitted]
"""What was emitted in one bucket, by bar start in epoch seconds."""


def bucket_key(bar: Bar) -> str:
    """``SYMBOL|tf|YYYY-MM-DD`` (``SYMBOL|1d|YYYY`` for day bars): where a bar's state lives."""
    ts = bar.ts
    if bar.tf == "1d":
        period = str(ts.year)
    else:
        period = _utc_moment(ts)[0] if ts.tzinfo is UTC else ts.date().isoformat()
    return f"{bar.symbol}|{bar.tf}|{period}"


def _seconds(ts: datetime) -> int:
    """The bar start ``ts`` in epoch seconds, as its bucket entry is keyed."""
    return _utc_moment(ts)[1] if ts.tzinfo is UTC else int(ts.timestamp())


@lru_cache(maxsize=16_384)
def _utc_moment(ts: datetime) -> tuple[str, int]:
    """The day (``YYYY-MM-DD``) and epoch seconds of a UTC ``ts``, remembered: the bars of
    a day file share their starts, and a backfill's symbols walk the same days one after
    another (17 days of extended-hours minutes are kept, as ``envelope.format_ts`` does).
    UTC only: equal moments in other zones may fall on other days."""
    return ts.date().isoformat(), int(ts.timestamp())


def _version(raw: bytes) -> int | None:
    """The version of a stamped value; ``None`` for one from before the stamp (version 1
    entries only: a whole number of them, each starting with a bar time below 2^56 s,
    so a zero byte)."""
    if raw[0] == _VERSION or raw[0] == _V2:
        return int(raw[0])
    if raw[0] == _V1 and len(raw) % _V1_ENTRY.size == _STAMP.size:
        return _V1
    return None


def written_at(raw: bytes) -> int | None:
    """When the bucket ``raw`` was last written (wall clock, epoch ms); ``None`` for a value
    from before the stamp."""
    if not raw or _version(raw) is None:
        return None
    _, stamp = _STAMP.unpack_from(raw)
    return int(stamp)


def _decode_v1(raw: bytes, first: int) -> Bucket:
    return {
        ts: Emitted(digest, rank, legacy=True)
        for ts, digest, rank in (
            _V1_ENTRY.unpack_from(raw, o) for o in range(first, len(raw), _V1_ENTRY.size)
        )
    }


def _decode_v2(raw: bytes, repr_digests: bool) -> Bucket:
    """Entries of version 3, or of version 2 (``repr_digests``: every OHLCV digest is
    ``repr_digest``'s)."""
    forced = _REPR if repr_digests else 0
    bucket: Bucket = {}
    offset = _STAMP.size
    while offset < len(raw):
        ts, digest, flags = _ENTRY.unpack_from(raw, offset)
        offset += _ENTRY.size
        vwap = transactions = None
        if flags & _HAS_VWAP:
            (vwap,) = _VWAP.unpack_from(raw, offset)
            offset += _VWAP.size
        if flags & _HAS_TRANSACTIONS:
            (transactions,) = _TRANSACTIONS.unpack_from(raw, offset)
            offset += _TRANSACTIONS.size
        legacy = bool(flags & _LEGACY)
        bucket[ts] = Emitted(digest, flags & _RANK_MASK, vwap, transactions, legacy=legacy,
                             v2_digest=not legacy and bool((flags | forced) & _REPR))  # fmt: skip
    return bucket


def decode_bucket(raw: bytes | None) -> Bucket:
    """The entries of a bucket value of any version (3, 2, 1, or from before the stamp)."""
    if not raw:
        return {}
    version = _version(raw)
    if version == _VERSION or version == _V2:
        return _decode_v2(raw, repr_digests=version == _V2)
    return _decode_v1(raw, _STAMP.size if version == _V1 else 0)


def _encode_entry(ts: int, emitted: Emitted) -> bytes:
    """One entry in one ``pack`` (a struct per combination of the optional fields)."""
    digest, rank, vwap, transactions, legacy, v2_digest = emitted
    flags = rank | (_LEGACY if legacy else 0) | (_REPR if v2_digest else 0)
    if vwap is None:
        if transactions is None:
            return _ENTRY.pack(ts, digest, flags)
        return _ENTRY_T.pack(ts, digest, flags | _HAS_TRANSACTIONS, transactions)
    if transactions is None:
        return _ENTRY_V.pack(ts, digest, flags | _HAS_VWAP, vwap)
    return _ENTRY_VT.pack(ts, digest, flags | _HAS_VWAP | _HAS_TRANSACTIONS, vwap, transactions)


def encode_bucket(bucket: Bucket, written_ms: int) -> bytes:
    """``bucket`` as a version 3 value stamped as written at ``written_ms`` (epoch ms)."""
    entries = [_encode_entry(ts, e) for ts, e in sorted(bucket.items())]
    return _STAMP.pack(_VERSION, written_ms) + b"".join(entries)


def restamped(raw: bytes, written_ms: int) -> bytes:
    """``raw`` (of any version) with the stamp ``written_ms`` and the same entries."""
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
    bars: list[Bar], source: Source, buckets: dict[str, Bucket],
    keys: Sequence[str] | None = None,
) -> tuple[list[Bar], dict[str, Bucket]]:  # fmt: skip
    """The bars to emit and the buckets as they will be once they are.

    ``buckets`` holds the current state of every bucket the bars fall in; it is
    not changed. ``keys``, when given, are the bars' ``bucket_key`` (computed once by a
    caller that needed them to read ``buckets``). A bar repeated within ``bars`` is
    judged against the earlier one. A bar that passes without being a correction (an
    enrichment, or a promotion to a higher source) is emitted with the fields already
    emitted that it lacks, so the bar topics, Redis and PostgreSQL all end with every
    field known.
    """
    updated: dict[str, Bucket] = {}
    admitted: list[Bar] = []
    for bar, key in zip(bars, keys or [bucket_key(bar) for bar in bars], strict=True):
        bucket = updated.get(key)
        if bucket is None:
            bucket = updated[key] = dict(buckets.get(key, {}))
        ts = _seconds(bar.ts)
        state = admit(bucket.get(ts), bar, source)
        if state is not None:
            bucket[ts] = state
            if (state.vwap, state.transactions) != (bar.vwap, bar.transactions):
                bar = replace(bar, vwap=state.vwap, transactions=state.transactions)
            admitted.append(bar)
    return admitted, updated
