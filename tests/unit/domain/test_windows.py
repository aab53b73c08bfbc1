"""Window alignment and resampling, checked against hand-made bars."""

from datetime import UTC, datetime, timedelta

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.resample import resample
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.domain.windows import window_end, window_start


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_minute_multiples_and_hours_align_to_the_clock() -> None:
    ts = utc(2024, 1, 16, 14, 37, 42)
    assert window_start(ts, TIMEFRAMES["1m"]) == utc(2024, 1, 16, 14, 37)
    assert window_start(ts, TIMEFRAMES["5m"]) == utc(2024, 1, 16, 14, 35)
    assert window_start(ts, TIMEFRAMES["15m"]) == utc(2024, 1, 16, 14, 30)
    assert window_start(ts, TIMEFRAMES["30m"]) == utc(2024, 1, 16, 14, 30)
    assert window_start(ts, TIMEFRAMES["1h"]) == utc(2024, 1, 16, 14)


def test_day_bars_start_at_new_york_midnight_across_dst() -> None:
    winter = window_start(utc(2024, 1, 17, 3), TIMEFRAMES["1d"])  # 22:00 on the 16th in New York
    assert winter == utc(2024, 1, 16, 5)
    summer = window_start(utc(2024, 7, 16, 15), TIMEFRAMES["1d"])
    assert summer == utc(2024, 7, 16, 4)
    # the spring-forward day is 23 hours long
    start = window_start(utc(2024, 3, 10, 12), TIMEFRAMES["1d"])
    assert window_end(start, TIMEFRAMES["1d"]) - start == timedelta(hours=23)


def bar(minute: int, o: float, h: float, low: float, c: float, v: float, vw: float) -> Bar:
    return Bar(symbol="AAPL", tf="1m", ts=utc(2024, 1, 16, 14, 30) + timedelta(minutes=minute),
               open=o, high=h, low=low, close=c, volume=v, vwap=vw, transactions=2)  # fmt: skip


def test_resample_folds_minutes_into_five_minute_bars() -> None:
    minutes = [
        bar(1, 10, 11, 9, 10.5, 100, 10.2),
        bar(0, 9.9, 10.1, 9.8, 10, 300, 10.0),
        bar(4, 10.5, 12, 10.4, 11.5, 100, 11.0),
        bar(5, 11.5, 11.6, 11.4, 11.45, 50, 11.5),
    ]
    first, second = resample(minutes, TIMEFRAMES["5m"])
    assert first.tf == "5m" and first.ts == utc(2024, 1, 16, 14, 30)
    assert (first.open, first.high, first.low, first.close) == (9.9, 12, 9, 11.5)
    assert first.volume == 500
    assert first.vwap == (300 * 10.0 + 100 * 10.2 + 100 * 11.0) / 500
    assert first.transactions == 6
    assert second.ts == utc(2024, 1, 16, 14, 35) and second.volume == 50


def test_unknown_vwap_stays_unknown() -> None:
    minutes = [bar(0, 1, 1, 1, 1, 10, 1.0), Bar(symbol="AAPL", tf="1m", ts=utc(2024, 1, 16, 14, 31),
               open=1, high=1, low=1, close=1, volume=5)]  # fmt: skip
    (folded,) = resample(minutes, TIMEFRAMES["15m"])
    assert folded.vwap is None and folded.transactions is None
