"""Dedup buckets: one table value per symbol, timeframe and day, judged bar by bar."""

import hashlib
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.dedup import (
    Bucket,
    Emitted,
    admit_batch,
    bucket_key,
    bucket_symbol,
    decode_bucket,
    encode_bucket,
    legacy_digest,
    restamped,
    stale_buckets,
    written_at,
)
from chronox_stream.tables.dedup import symbol_partition

T0 = datetime(2024, 1, 16, 23, 59, tzinfo=UTC)


def bar(minutes: int, close: float = 1.0, tf: str = "1m") -> Bar:
    return Bar(symbol="AAPL", tf=tf, ts=T0 + timedelta(minutes=minutes),
               open=1, high=2, low=0.5, close=close, volume=10)  # fmt: skip


def test_bars_fall_in_day_buckets_and_day_bars_in_year_buckets() -> None:
    assert bucket_key(bar(0)) == "AAPL|1m|2024-01-16"
    assert bucket_key(bar(1)) == "AAPL|1m|2024-01-17"
    assert bucket_key(bar(0, tf="1d")) == "AAPL|1d|2024"


def test_a_bar_start_in_another_zone_falls_on_its_own_day_and_keys_its_instant() -> None:
    utc = bar(1)  # 2024-01-17 00:00 UTC, judged first
    _, first = admit_batch([utc], "api", {})
    elsewhere = replace(utc, ts=utc.ts.astimezone(timezone(timedelta(hours=-5))))
    assert bucket_key(elsewhere) == "AAPL|1m|2024-01-16"
    _, state = admit_batch([elsewhere], "api", {})
    assert state["AAPL|1m|2024-01-16"].keys() == first["AAPL|1m|2024-01-17"].keys()


def test_a_replayed_batch_admits_nothing_and_corrections_pass() -> None:
    bars = [bar(0), bar(1), bar(2)]
    admitted, state = admit_batch(bars, "api", {})
    assert admitted == bars and set(state) == {"AAPL|1m|2024-01-16", "AAPL|1m|2024-01-17"}
    stored = {k: decode_bucket(encode_bucket(v, 1_700_000_000_000)) for k, v in state.items()}
    assert stored == state
    again, _ = admit_batch(bars, "flatpack", stored)
    assert again == []
    corrected = [replace(bars[1], close=1.5)]
    assert admit_batch(corrected, "stream", stored)[0] == []
    assert admit_batch(corrected, "api", stored)[0] == corrected


def test_a_bar_repeated_in_one_batch_is_emitted_once() -> None:
    admitted, _ = admit_batch([bar(5), bar(5)], "api", {})
    assert admitted == [bar(5)]


DAY_MS = 86_400_000
NOW_MS = 1_800_000_000_000


def v1_value(bars: list[Bar], rank: int, written_ms: int | None) -> bytes:
    """A bucket as version 1 wrote it: per bar its start (8 bytes), the digest of all its
    values and its rank, after the stamp (version byte 1, epoch ms) unless from before it."""
    entries = b"".join(struct.pack(">q8sB", int(b.ts.timestamp()), legacy_digest(b), rank)
                       for b in bars)  # fmt: skip
    return (b"" if written_ms is None else struct.pack(">Bq", 1, written_ms)) + entries


def test_a_bucket_carries_when_it_was_written() -> None:
    _, state = admit_batch([bar(0), replace(bar(3), vwap=1.1, transactions=5)], "api", {})
    bucket = state["AAPL|1m|2024-01-16"]
    raw = encode_bucket(bucket, NOW_MS)
    assert raw[0] == 3, "version 3"
    assert written_at(raw) == NOW_MS and decode_bucket(raw) == bucket
    assert written_at(encode_bucket({}, NOW_MS)) == NOW_MS


def test_an_entry_holds_only_the_fields_its_bar_had() -> None:
    def size(b: Bar) -> int:
        _, state = admit_batch([b], "api", {})
        return len(encode_bucket(state[bucket_key(b)], NOW_MS)) - 9  # less the stamp

    assert size(bar(0)) == 17  # start (8), OHLCV digest (8), rank and flags (1)
    assert size(replace(bar(0), transactions=5)) == 17 + 8
    assert size(replace(bar(0), vwap=1.1, transactions=5)) == 17 + 16


def test_version_1_buckets_are_still_read_and_judged_by_their_rule() -> None:
    bars = [bar(-1), replace(bar(0), transactions=3)]  # as a flat file gave them
    for written in (NOW_MS, None):
        raw = v1_value(bars, 3, written)
        assert written_at(raw) == written
        bucket = decode_bucket(raw)
        assert set(bucket) == {int(b.ts.timestamp()) for b in bars}
        assert all(e.legacy and e.rank == 3 for e in bucket.values())
        key = bucket_key(bars[0])
        assert admit_batch(bars, "api", {key: bucket})[0] == [], "the same bars: dropped"
        enriched = [replace(bars[1], vwap=1.0)]  # version 1 kept no fields: a correction
        admitted, state = admit_batch(enriched, "api", {key: bucket})
        assert admitted == enriched
        assert decode_bucket(encode_bucket(state[key], NOW_MS)) == state[key]
        assert admit_batch(enriched, "api", state)[0] == []
        again = decode_bucket(restamped(raw, NOW_MS + 1))
        assert again == bucket and written_at(restamped(raw, NOW_MS + 1)) == NOW_MS + 1


def v2_value(entries: list[tuple[Bar, int]], written_ms: int) -> bytes:
    """A bucket as version 2 wrote it: per bar its start, the digest of the repr of its
    OHLCV as floats, rank and flags (0x10 vwap, 0x20 transactions), then those fields."""
    out = struct.pack(">Bq", 2, written_ms)
    for b, rank in entries:
        values = tuple(float(v) + 0.0 for v in (b.open, b.high, b.low, b.close, b.volume))
        digest = hashlib.blake2b(repr(values).encode(), digest_size=8).digest()
        flags = rank | (0x10 if b.vwap is not None else 0) | (0x20 if b.transactions else 0)
        out += struct.pack(">q8sB", int(b.ts.timestamp()), digest, flags)
        out += struct.pack(">d", b.vwap) if b.vwap is not None else b""
        out += struct.pack(">q", b.transactions) if b.transactions is not None else b""
    return out


def test_version_2_buckets_are_still_read_and_judged_by_their_digest() -> None:
    flat = replace(bar(-1), transactions=3)  # as a flat file gave it (rank 3)
    snap = replace(bar(0), vwap=1.5, transactions=4)  # as a snapshot gave it (rank 1)
    raw = v2_value([(flat, 3), (snap, 1)], NOW_MS)
    assert written_at(raw) == NOW_MS
    bucket = decode_bucket(raw)
    assert [(e.rank, e.vwap, e.transactions, e.v2_digest) for e in bucket.values()] == [
        (3, None, 3, True), (1, 1.5, 4, True)]  # fmt: skip
    key = bucket_key(flat)
    assert admit_batch([replace(flat, volume=10.0)], "flatpack", {key: bucket})[0] == []
    assert admit_batch([snap], "api", {key: bucket})[0] == [snap], "the same values, promoted"
    enriched = replace(flat, vwap=1.25)
    admitted, state = admit_batch([enriched], "flatpack", {key: bucket})
    assert admitted == [enriched], "an enrichment: kept with its version 2 digest"
    rewritten = decode_bucket(encode_bucket(state[key], NOW_MS))
    assert rewritten == state[key] and rewritten[int(flat.ts.timestamp())].v2_digest
    assert admit_batch([enriched], "flatpack", {key: rewritten})[0] == []
    corrected = replace(enriched, close=1.25)
    admitted, state = admit_batch([corrected], "flatpack", {key: rewritten})
    assert admitted == [corrected]
    assert not state[key][int(flat.ts.timestamp())].v2_digest, "the new bar's digest"
    assert admit_batch([corrected], "flatpack", state)[0] == []


def test_a_legacy_entry_survives_a_rewrite() -> None:
    legacy = {60: Emitted(b"12345678", 2, legacy=True), 120: Emitted(b"abcdefgh", 3, 1.5, 4),
              180: Emitted(b"ABCDEFGH", 1, v2_digest=True)}  # fmt: skip
    assert decode_bucket(encode_bucket(legacy, NOW_MS)) == legacy


def test_buckets_are_stale_by_when_they_were_written_not_by_their_bars() -> None:
    _, state = admit_batch([bar(0)], "api", {})  # a bar of 2024
    bucket = state["AAPL|1m|2024-01-16"]
    values = [
        ("AAPL|1m|2015-01-02", encode_bucket(bucket, NOW_MS - DAY_MS)),  # a backfill of 2015
        ("AAPL|1m|2024-01-16", encode_bucket(bucket, NOW_MS - 31 * DAY_MS)),
        ("MSFT|1m|2024-01-16", encode_bucket(bucket, NOW_MS - 30 * DAY_MS)),
        ("IBM|1d|2024", v1_value([bar(0)], 3, None)),  # before the stamp
        ("IBM|1m|2024-01-16", v1_value([bar(0)], 3, NOW_MS - 31 * DAY_MS)),  # version 1
    ]
    assert stale_buckets(values, NOW_MS, 30 * DAY_MS) == (
        ["AAPL|1m|2024-01-16", "IBM|1m|2024-01-16"], ["IBM|1d|2024"])


def test_a_bucket_is_purged_in_the_partition_its_symbol_is_keyed_to() -> None:
    partitioner = DefaultPartitioner()
    for symbol in ["AAPL", "MSFT", "BRK.B", "X", "GOOGL"]:
        expected = partitioner(symbol.encode(), list(range(8)), list(range(8)))
        assert symbol_partition(bucket_symbol(f"{symbol}|1m|2024-01-16"), 8) == expected


def test_a_promoted_bar_is_emitted_with_the_fields_already_emitted() -> None:
    streamed = replace(bar(0), vwap=1.01, transactions=3)
    _, state = admit_batch([streamed], "stream", {})
    flat = replace(bar(0), transactions=3)  # the flat file's bar: no vwap
    admitted, _ = admit_batch([flat], "flatpack", state)
    assert admitted == [streamed], "final now, and the vwap is not lost downstream"
    _, state = admit_batch([flat], "flatpack", {})
    api = replace(bar(0), vwap=1.01)  # adds vwap, lacks transactions
    assert admit_batch([api], "api", state)[0] == [streamed]


def test_any_bar_time_a_source_may_send_is_kept() -> None:
    far = replace(bar(0), ts=datetime(2200, 1, 2, tzinfo=UTC))
    _, state = admit_batch([far], "api", {})
    assert decode_bucket(encode_bucket(state[bucket_key(far)], NOW_MS)) == state[bucket_key(far)]


@given(st.dictionaries(
    st.integers(-(2**62), 2**62),
    st.builds(Emitted, st.binary(min_size=8, max_size=8), st.integers(0, 15),
              st.none() | st.floats(allow_nan=False), st.none() | st.integers(0, 2**63 - 1),
              st.booleans(), st.booleans()),
    max_size=5,
))  # fmt: skip
def test_a_version_3_value_is_laid_out_as_documented_and_reads_back(bucket: Bucket) -> None:
    expected = struct.pack(">Bq", 3, NOW_MS)
    for ts, e in sorted(bucket.items()):
        flags = e.rank | (0x40 if e.legacy else 0) | (0x80 if e.v2_digest else 0)
        flags |= (0x10 if e.vwap is not None else 0) | (0x20 if e.transactions is not None else 0)
        expected += struct.pack(">q8sB", ts, e.digest, flags)
        expected += b"" if e.vwap is None else struct.pack(">d", e.vwap)
        expected += b"" if e.transactions is None else struct.pack(">q", e.transactions)
    raw = encode_bucket(bucket, NOW_MS)
    assert raw == expected
    read = decode_bucket(raw)
    assert read.keys() == bucket.keys()
    for ts, e in bucket.items():
        v2 = e.v2_digest and not e.legacy  # a legacy entry's digest is version 1's
        assert read[ts] == e._replace(v2_digest=v2)
