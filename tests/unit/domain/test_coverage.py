from datetime import UTC, datetime

from chronox_stream.domain.coverage import Coverage
from chronox_stream.domain.gaps import Interval


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_fetched_windows_merge_and_move_the_last_backfill_forward_only() -> None:
    coverage = Coverage()
    coverage = coverage.with_fetched(Interval(utc(2024, 1, 3), utc(2024, 1, 4)))
    coverage = coverage.with_fetched(Interval(utc(2024, 1, 1), utc(2024, 1, 3)))
    assert coverage.covered == (Interval(utc(2024, 1, 1), utc(2024, 1, 4)),)
    assert coverage.last_backfill == utc(2024, 1, 4)
    assert Coverage.from_bytes(coverage.to_bytes()) == coverage
