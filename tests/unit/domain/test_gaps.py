"""Gap maths: the threshold rule and holes judged on the trading calendar."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chronox_stream.domain.gaps import (
    Interval,
    api_windows,
    default_start,
    merge,
    split,
    subtract,
    trading_holes,
)
from chronox_stream.domain.market_calendar import extended_hours, trading_days

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def seed_start(last_backfill: datetime | None) -> datetime | None:
    return default_start(last_backfill, end=NOW, now=NOW, lookback=timedelta(days=3))


def test_gap_detected_when_last_backfill_old() -> None:
    assert seed_start(NOW - timedelta(days=10)) == NOW - timedelta(days=10)


def test_no_gaps_when_last_backfill_recent() -> None:
    assert seed_start(NOW - timedelta(days=2)) is None
    assert seed_start(NOW - timedelta(days=7)) is None


def test_multiple_gap_windows_handled() -> None:
    start = seed_start(NOW - timedelta(days=30))
    assert start is not None
    windows = split(Interval(start, NOW))
    assert len(windows) == 5
    assert all(w.end - w.start <= timedelta(days=7) for w in windows)
    assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))


def test_never_backfilled_starts_at_the_lookback() -> None:
    assert seed_start(None) == NOW - timedelta(days=3)


moments = st.integers(min_value=0, max_value=10_000).map(
    lambda m: utc(2024, 1, 1) + timedelta(minutes=m)
)
intervals = st.builds(Interval, moments, moments)


@given(st.lists(intervals, max_size=8), intervals)
def test_holes_and_coverage_tile_the_target(covered: list[Interval], target: Interval) -> None:
    holes = subtract(target, covered)
    for hole in holes:
        assert target.start <= hole.start < hole.end <= target.end
        assert all(hole.end <= c.start or hole.start >= c.end for c in covered if not c.empty)
    # every minute of the target is either in a hole or covered
    minute = target.start
    while minute < target.end:
        in_hole = any(h.start <= minute < h.end for h in holes)
        in_cover = any(c.start <= minute < c.end for c in covered)
        assert in_hole != in_cover
        minute += timedelta(minutes=97)


@given(intervals, st.integers(min_value=1, max_value=5000))
def test_split_tiles_exactly(interval: Interval, minutes: int) -> None:
    windows = split(interval, timedelta(minutes=minutes))
    if interval.empty:
        assert windows == []
    else:
        assert windows[0].start == interval.start and windows[-1].end == interval.end
        assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))


def test_merge_joins_touching_and_overlapping() -> None:
    a = Interval(utc(2024, 1, 1), utc(2024, 1, 2))
    b = Interval(utc(2024, 1, 2), utc(2024, 1, 3))
    c = Interval(utc(2024, 1, 5), utc(2024, 1, 6))
    assert merge([c, b, a]) == [Interval(utc(2024, 1, 1), utc(2024, 1, 3)), c]


def holes(requested: Interval, covered: list[Interval]) -> list[Interval]:
    return trading_holes(
        requested, covered, trading_days=trading_days, trading_hours=extended_hours
    )


def test_an_interior_trading_day_missing_is_a_hole() -> None:
    # Mon 2024-01-15 is MLK day (closed); Tue 16 .. Thu 18 trade.
    requested = Interval(utc(2024, 1, 13), utc(2024, 1, 19))
    covered = [
        Interval(utc(2024, 1, 13), utc(2024, 1, 17, 1)),  # Tue 16's after-hours end 01:00 UTC
        Interval(utc(2024, 1, 18, 1), utc(2024, 1, 19)),
    ]
    assert holes(requested, covered) == [Interval(utc(2024, 1, 17, 9), utc(2024, 1, 18, 1))]


def test_weekends_and_holidays_are_never_holes() -> None:
    # After Friday 12's after-hours (01:00 UTC): Sat 13, Sun 14, MLK Mon 15 trade nothing.
    assert holes(Interval(utc(2024, 1, 13, 1), utc(2024, 1, 16, 8)), []) == []
    # the day after Thanksgiving closes early: its after-hours end at 17:00 New York.
    (hole,) = holes(Interval(utc(2024, 11, 29), utc(2024, 11, 30)), [])
    assert hole == Interval(utc(2024, 11, 29, 9), utc(2024, 11, 29, 22))


def windows(**kwargs: object) -> list[Interval]:
    args: dict[str, object] = {
        "requested_start": None,
        "end": utc(2024, 3, 1, 12),
        "now": utc(2024, 3, 1, 12),
        "covered": [],
        "last_backfill": None,
        "lookback": timedelta(days=3),
        "threshold": timedelta(days=7),
        "window": timedelta(days=7),
        "trading_days": trading_days,
        "trading_hours": extended_hours,
    }
    args.update(kwargs)
    return api_windows(**args)  # type: ignore[arg-type]


def test_api_backfill_scheduled_for_gaps() -> None:
    old = windows(last_backfill=utc(2024, 2, 10))
    assert old[0].start >= utc(2024, 2, 10) and old[-1].end == utc(2024, 3, 1, 12)
    assert all(w.end - w.start <= timedelta(days=7) for w in old)
    assert windows(last_backfill=utc(2024, 2, 28)) == []
    never = windows()
    assert never[0].start >= utc(2024, 2, 27, 12)


def test_flatpack_api_gap_combo() -> None:
    # flatpack covered every day but Wed 2024-02-28: api fetches exactly that session
    covered = [
        Interval(utc(2024, 2, 20), utc(2024, 2, 28, 1)),
        Interval(utc(2024, 2, 29, 1), utc(2024, 3, 1, 12)),
    ]
    assert windows(requested_start=utc(2024, 2, 20), covered=covered) == [
        Interval(utc(2024, 2, 28, 9), utc(2024, 2, 29, 1))
    ]


def test_a_long_gap_is_one_hole_fetched_in_week_windows() -> None:
    (hole,) = holes(Interval(utc(2024, 2, 1), utc(2024, 3, 1)), [])
    # Wed 31 Jan after-hours run to 01:00 UTC on 1 Feb, so the hole starts at the request
    assert hole == Interval(utc(2024, 2, 1), utc(2024, 3, 1))
    assert len(windows(requested_start=utc(2024, 2, 1))) == 5
