"""Dedup buckets: one table value per symbol, timeframe and day, judged bar by bar."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chronox_stream.bars import Bar
from chronox_stream.dedup import admit_batch, bucket_key, decode_bucket, encode_bucket

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
    stored = {k: decode_bucket(encode_bucket(v)) for k, v in state.items()}
    assert stored == state
    again, _ = admit_batch(bars, "flatpack", stored)
    assert again == []
    corrected = [replace(bars[1], close=1.5)]
    assert admit_batch(corrected, "stream", stored)[0] == []
    assert admit_batch(corrected, "api", stored)[0] == corrected


def test_a_bar_repeated_in_one_batch_is_emitted_once() -> None:
    admitted, _ = admit_batch([bar(5), bar(5)], "api", {})
    assert admitted == [bar(5)]
