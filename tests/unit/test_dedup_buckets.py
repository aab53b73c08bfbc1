"""Dedup buckets: one table value per symbol, timeframe and day, judged bar by bar."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aiokafka.partitioner import DefaultPartitioner

from chronox_stream.bars import Bar
from chronox_stream.dedup import (
    admit_batch,
    bucket_key,
    bucket_symbol,
    decode_bucket,
    encode_bucket,
    restamped,
    stale_buckets,
    written_at,
)
from tables.dedup import symbol_partition

T0 = datetime(2024, 1, 16, 23, 59, tzinfo=UTC)


def bar(minutes: int, close: float = 1.0, tf: str = "1m") -> Bar:
    return Bar(symbol="AAPL", tf=tf, ts=T0 + timedelta(minutes=minutes),
               open=1, high=2, low=0.5, close=close, volume=10)  # fmt: skip


def test_bars_fall_in_day_buckets_and_day_bars_in_year_buckets() -> None:
    assert bucket_key(bar(0)) == "AAPL|1m|2024-01-16"
    assert bucket_key(bar(1)) == "AAPL|1m|2024-01-17"
    assert bucket_key(bar(0, tf="1d")) == "AAPL|1d|2024"


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


def test_a_bucket_carries_when_it_was_written_and_old_values_still_read() -> None:
    _, state = admit_batch([bar(0), bar(3)], "api", {})
    bucket = state["AAPL|1m|2024-01-16"]
    raw = encode_bucket(bucket, NOW_MS)
    assert written_at(raw) == NOW_MS and decode_bucket(raw) == bucket
    old = raw[9:]  # as written before the stamp: entries only
    assert written_at(old) is None and decode_bucket(old) == bucket
    assert restamped(old, NOW_MS + 1) == encode_bucket(bucket, NOW_MS + 1)
    assert written_at(encode_bucket({}, NOW_MS)) == NOW_MS


def test_buckets_are_stale_by_when_they_were_written_not_by_their_bars() -> None:
    _, state = admit_batch([bar(0)], "api", {})  # a bar of 2024
    bucket = state["AAPL|1m|2024-01-16"]
    values = [
        ("AAPL|1m|2015-01-02", encode_bucket(bucket, NOW_MS - DAY_MS)),  # a backfill of 2015
        ("AAPL|1m|2024-01-16", encode_bucket(bucket, NOW_MS - 31 * DAY_MS)),
        ("MSFT|1m|2024-01-16", encode_bucket(bucket, NOW_MS - 30 * DAY_MS)),
        ("IBM|1d|2024", encode_bucket(bucket, NOW_MS - 30 * DAY_MS)[9:]),  # before the stamp
    ]
    assert stale_buckets(values, NOW_MS, 30 * DAY_MS) == (["AAPL|1m|2024-01-16"], ["IBM|1d|2024"])


def test_a_bucket_is_purged_in_the_partition_its_symbol_is_keyed_to() -> None:
    partitioner = DefaultPartitioner()
    for symbol in ["AAPL", "MSFT", "BRK.B", "X", "GOOGL"]:
        expected = partitioner(symbol.encode(), list(range(8)), list(range(8)))
        assert symbol_partition(bucket_symbol(f"{symbol}|1m|2024-01-16"), 8) == expected
