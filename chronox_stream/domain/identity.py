"""What "the same bar" means: one definition for the dedup digest, precedence and SQL (pure).

Two bars of one ``dedup_key`` have the same values when:

- **OHLCV**: ``open``, ``high``, ``low``, ``close`` and ``volume`` are equal as IEEE-754
  doubles, which is how PostgreSQL stores and compares them (``double precision``): an
  integer equals its float (``100`` is ``100.0``), ``-0.0`` equals ``0.0``, and nothing
  else is rounded: ``0.1 + 0.2`` is not ``0.3`` (no tolerance, since "close enough" is not
  transitive and a bar differing in the last bit is another bar);
- **features**: ``vwap`` (a double, as above) and ``transactions`` (an integer) are each
  either absent or a value; ``None``, ``null`` and a missing key are all absent. Whether an
  absent field makes a bar poorer or the other an enrichment is ``domain.precedence``'s rule.

Every value is finite (the envelope's and the sources' bounds refuse the others), so the
one place where PostgreSQL's doubles and Python's floats part, ``NaN``, never arises.

:func:`ohlcv_key` and :func:`features_of` are that definition in Python, :func:`ohlcv_digest`
its 8-byte form in the dedup table, and :func:`sql_ohlcv_differs` / :func:`sql_feature_differs`
the same comparison in PostgreSQL's merge; ``tests/integration/test_precedence_parity.py``
runs the same cases through all of them.

The digest is BLAKE2b of the five doubles packed as big-endian IEEE-754 (after
:func:`number`): the bytes of a double name it exactly, and packing is several times
cheaper than the text. Dedup buckets up to version 2 hold the digest of the ``repr`` of the
five doubles instead (:func:`repr_digest`); their entries are judged by it until a bar of
the same key replaces them (``domain.dedup``). A bucket entry written for a bar with a
volume of ``-0.0`` before the shared definition (the one value whose ``repr`` digest
changed) is taken for a correction once: that bar is emitted again, which the sinks absorb
(PostgreSQL sees the same values, Redis publishes an identical envelope).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from hashlib import blake2b

from chronox_stream.domain.bars import Bar

OHLCV_FIELDS = ("open", "high", "low", "close", "volume")
FEATURE_FIELDS = ("vwap", "transactions")

OHLCV = tuple[float, float, float, float, float]
#: ``x + 0.0`` is :func:`number` for the bars dedup sees (ints within a double's range).
_FIVE_DOUBLES = struct.Struct(">5d")


@dataclass(frozen=True, slots=True)
class Features:
    """The optional fields of a bar: ``None`` where its source does not know them."""

    vwap: float | None = None
    transactions: int | None = None


def number(value: float) -> float:
    """``value`` as the double PostgreSQL keeps: an integer as its float, ``-0.0`` as ``0.0``."""
    return float(value) + 0.0


def ohlcv_key(bar: Bar) -> OHLCV:
    """The values every source has, compared as PostgreSQL compares them."""
    return (number(bar.open), number(bar.high), number(bar.low), number(bar.close),
            number(bar.volume))  # fmt: skip


def features_of(bar: Bar) -> Features:
    return Features(
        None if bar.vwap is None else number(bar.vwap),
        None if bar.transactions is None else int(bar.transactions),
    )


def ohlcv_digest(bar: Bar) -> bytes:
    """8 bytes identifying a bar's OHLCV (not its source, nor its optional fields)."""
    packed = _FIVE_DOUBLES.pack(bar.open + 0.0, bar.high + 0.0, bar.low + 0.0, bar.close + 0.0,
                                bar.volume + 0.0)  # fmt: skip
    return blake2b(packed, digest_size=8).digest()


def repr_digest(bar: Bar) -> bytes:
    """The OHLCV digest dedup buckets up to version 2 hold (of the ``repr`` of the values)."""
    return blake2b(repr(ohlcv_key(bar)).encode(), digest_size=8).digest()


def sql_ohlcv_differs(old: str, new: str) -> str:
    """SQL true when the OHLCV of rows ``old`` and ``new`` differ (double precision equality:
    ``-0`` equals ``0``, as :func:`number` makes it in Python)."""
    left = ", ".join(f"{old}.{c}" for c in OHLCV_FIELDS)
    right = ", ".join(f"{new}.{c}" for c in OHLCV_FIELDS)
    return f"({left}) IS DISTINCT FROM ({right})"


def sql_feature_differs(old: str, new: str, field: str) -> str:
    """SQL true when both rows have ``field`` and its values differ (absent is ``NULL``)."""
    return f"COALESCE({old}.{field} <> {new}.{field}, false)"
