"""One definition of "the same bar": the dedup digest and precedence agree on how numbers
compare (``100`` is ``100.0``, ``-0.0`` is ``0.0``, the last bit counts) and on absent
fields (``null``, a missing key and ``None`` are one thing). PostgreSQL's side of the same
cases is in ``tests/integration/test_precedence_parity.py``."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest

from chronox_stream.contracts.envelope import decode_bar
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.dedup import emitted_of, judge
from chronox_stream.domain.identity import ohlcv_digest, ohlcv_key, repr_digest
from chronox_stream.domain.precedence import Relation, compare

BAR = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 16, 15, tzinfo=UTC),
          open=10, high=11, low=9.5, close=10.5, volume=1200, vwap=10.25,
          transactions=7)  # fmt: skip

CASES: list[tuple[str, Bar, Bar, Relation]] = [
    ("integer volume and its float", BAR, replace(BAR, volume=1200.0), "same"),
    ("integer prices and their floats", BAR, replace(BAR, open=10.0, high=11.0), "same"),
    ("an integer vwap and its float", replace(BAR, vwap=10), replace(BAR, vwap=10.0), "same"),
    ("zero volume signed", replace(BAR, volume=0.0), replace(BAR, volume=-0.0), "same"),
    ("an integer beyond 2**53 and its double", replace(BAR, volume=2**53 + 1),
     replace(BAR, volume=float(2**53)), "same"),
    ("float noise in a price", replace(BAR, close=0.3), replace(BAR, close=0.1 + 0.2),
     "correction"),
    ("the last bit of a price", BAR, replace(BAR, high=11.000000000000002), "correction"),
    ("a vwap where none was", replace(BAR, vwap=None), BAR, "enrichment"),
    ("no vwap where one was", BAR, replace(BAR, vwap=None), "poorer"),
    ("another transactions count", BAR, replace(BAR, transactions=8), "correction"),
]  # fmt: skip


@pytest.mark.parametrize(("kept", "new", "rel"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_dedup_and_precedence_judge_numbers_alike(kept: Bar, new: Bar, rel: Relation) -> None:
    assert compare(kept, new) == rel
    assert judge(emitted_of(kept, "api"), new) == rel
    as_version_2_wrote_it = emitted_of(kept, "api")._replace(digest=repr_digest(kept),
                                                             v2_digest=True)  # fmt: skip
    assert judge(as_version_2_wrote_it, new) == rel
    assert (ohlcv_digest(kept) == ohlcv_digest(new)) == (ohlcv_key(kept) == ohlcv_key(new))


def _envelope(features: object) -> bytes:
    doc = {"event": "bar", "symbol": "AAPL", "tf": "1m", "ts": "2024-01-16T15:00:00Z",
           "ohlcv": {"open": 10, "high": 11, "low": 9.5, "close": 10.5, "volume": 1200},
           "source": "api", "version": "v1", "dedup_key": "AAPL|1m|2024-01-16T15:00:00Z"}
    if features is not ...:
        doc["features"] = features
    return orjson.dumps(doc)  # fmt: skip


def test_null_a_missing_key_and_no_features_are_one_absent_field() -> None:
    forms = [_envelope(...), _envelope(None), _envelope({}),
             _envelope({"vwap": None, "transactions": None})]  # fmt: skip
    bars = [decode_bar(raw)[0] for raw in forms]
    assert all(compare(bars[0], other) == "same" for other in bars)
    assert all(judge(emitted_of(bars[0], "api"), other) == "same" for other in bars)


def test_the_digest_of_ordinary_bars_is_the_one_stored_buckets_hold() -> None:
    """Buckets written before the shared definition keep matching: version 2's digest
    encoding is the BLAKE2b of the repr of the five values as floats, unchanged but for
    -0.0; version 3's is of the five values packed as big-endian doubles."""
    for bar in (BAR, replace(BAR, volume=0.0), replace(BAR, close=0.1 + 0.2)):
        values = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        stored = hashlib.blake2b(repr(tuple(float(v) for v in values)).encode(), digest_size=8)
        assert repr_digest(bar) == stored.digest()
        packed = struct.pack(">5d", *(float(v) for v in values))
        assert ohlcv_digest(bar) == hashlib.blake2b(packed, digest_size=8).digest()
