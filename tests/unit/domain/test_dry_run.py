"""A dry run judges as a real run on the state it would have left, and writes nothing."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.coverage import Coverage
from chronox_stream.domain.dedup import Bucket, admit_batch, bucket_key
from chronox_stream.domain.dry_run import DryRunCoverage
from chronox_stream.domain.gaps import Interval
from chronox_stream.domain.sources import Source
from chronox_stream.runtime.emit import Emitter, LivePolicy

T0 = datetime(2024, 1, 16, 15, tzinfo=UTC)


def bar(minute: int, close: float = 1.0) -> Bar:
    return Bar(symbol="AAPL", tf="1m", ts=T0 + timedelta(minutes=minute),
               open=1, high=2, low=0.5, close=close, volume=10)  # fmt: skip


class ReadOnlyDedup:
    """A dedup table holding ``bars`` as emitted by ``source``; any write fails the test."""

    def __init__(self, bars: list[Bar], source: Source) -> None:
        self.buckets = admit_batch(bars, source, {})[1]

    def current(self, keys: set[str]) -> dict[str, Bucket]:
        return {key: self.buckets.get(key, {}) for key in keys}

    def decide(self, bars: list[Bar], source: Source) -> tuple[list[Bar], dict[str, Bucket]]:
        return admit_batch(bars, source, self.current({bucket_key(b) for b in bars}))

    def record(self, buckets: dict[str, Bucket]) -> None:
        pytest.fail("a dry run recorded dedup state")

    def purge(self) -> int:
        pytest.fail("a dry run purged dedup state")


async def no_send(tf: str, key: bytes, value: bytes) -> Any:
    pytest.fail("a dry run sent a bar")


async def no_write(rows: Sequence[tuple[Bar, Source]]) -> None:
    pytest.fail("a dry run wrote to the database")


async def no_reject(bar: Bar, source: Source, rejected: Rejected) -> None:
    pytest.fail("a dry run dead-lettered a bar")


async def test_a_dry_run_counts_what_a_real_run_would_emit_and_writes_nothing() -> None:
    table = ReadOnlyDedup([bar(0), bar(1)], "api")
    emitter = Emitter(LivePolicy(dry_run=True), dedup=table, send=no_send, write_db=no_write,
                      reject=no_reject)
    flatpack = [bar(0), bar(1, close=1.5), bar(2), bar(3)]  # one known, one corrected, two new
    assert await emitter.emit(flatpack, "flatpack") == 3
    assert await emitter.emit([bar(2), bar(3), bar(4)], "api") == 1, "judged on its own overlay"
    assert await emitter.emit([bar(4, close=3.0)], "snapshot") == 0
    assert emitter.count == 4
    fresh = Emitter(LivePolicy(dry_run=True), dedup=table, send=no_send, write_db=no_write,
                      reject=no_reject)
    assert await fresh.emit(flatpack, "flatpack") == 3, "another dry run starts from the table"


async def test_a_dry_run_does_not_count_a_bar_it_would_refuse() -> None:
    table = ReadOnlyDedup([], "api")
    emitter = Emitter(LivePolicy(dry_run=True), dedup=table, send=no_send, write_db=no_write,
                      reject=no_reject)  # fmt: skip
    assert await emitter.emit([bar(0), bar(1, close=-1.0), bar(2)], "api") == 2


class FixedCoverage:
    def __init__(self, coverage: Coverage) -> None:
        self.coverage = coverage

    def get(self, symbol: str, tf: str) -> Coverage:
        return self.coverage


def test_a_dry_run_checkpoints_in_memory_over_the_table() -> None:
    day = Interval(T0, T0 + timedelta(hours=1))
    later = Interval(T0 + timedelta(hours=2), T0 + timedelta(hours=3))
    table = FixedCoverage(Coverage().with_fetched(day))
    overlay = DryRunCoverage(table)
    assert overlay.get("AAPL", "1m") == table.coverage
    overlay.mark_fetched("AAPL", "1m", later)
    assert overlay.get("AAPL", "1m").covered == (day, later)
    assert overlay.get("MSFT", "1m") == table.coverage
    assert table.coverage.covered == (day,), "the table is untouched"
