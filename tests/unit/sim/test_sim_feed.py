"""The WebSocket timeline: split-invariant, late trades re-send AM, final AM equals the REST bar."""

from __future__ import annotations

from datetime import UTC, date, datetime

from chronox_stream.sim.feed import feed_events
from chronox_stream.sim.history import minute_bars
from chronox_stream.sim.market import Market
from chronox_stream.sim.sessions import NS_PER_MIN, NS_PER_S, to_ns

MARKET = Market(7)
ALL = frozenset({"T", "A", "AM"})
START = to_ns(datetime(2024, 1, 17, 15, 0, tzinfo=UTC))


def _events(after: int, upto: int, late: bool = True, channels: frozenset[str] = ALL) -> list:  # type: ignore[type-arg]
    return feed_events(MARKET, "AAPL", channels, after, upto, late)


def test_the_feed_does_not_depend_on_how_time_is_sliced() -> None:
    end = START + 20 * NS_PER_MIN
    whole = [t.event for t in _events(START, end)]
    step = 7 * NS_PER_S + 123
    sliced = [t.event for a in range(START, end, step) for t in _events(a, min(a + step, end))]
    assert sliced == whole


def test_minute_bars_close_with_their_minute_and_late_trades_correct_them() -> None:
    end = START + 45 * NS_PER_MIN
    events = _events(START, end, channels=frozenset({"AM"}))
    last: dict[int, dict] = {}  # type: ignore[type-arg]
    resent = 0
    for timed in events:
        event = timed.event
        assert timed.at_ns == START + ((timed.at_ns - START) // NS_PER_MIN) * NS_PER_MIN
        assert event["e"] * 10**6 <= timed.at_ns
        resent += event["s"] in last
        last[event["s"]] = event
    assert resent > 0, "some minute received a late trade and was re-sent"
    final = {b.start_ms: b for b in minute_bars(MARKET, "AAPL", date(2024, 1, 17))}
    settled = [s for s in last if START // 10**6 <= s < (end - 16 * NS_PER_MIN) // 10**6]
    assert len(settled) > 25
    for s in settled:
        bar, event = final[s], last[s]
        assert (event["o"], event["h"], event["l"], event["c"], event["v"], event["vw"]) == (
            bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap,
        )  # fmt: skip


def test_without_late_trades_each_minute_is_sent_once_and_final() -> None:
    events = _events(START, START + 30 * NS_PER_MIN, late=False, channels=frozenset({"AM", "T"}))
    minutes = [t.event["s"] for t in events if t.event["ev"] == "AM"]
    assert len(minutes) == len(set(minutes))
    final = {b.start_ms: b.volume for b in minute_bars(MARKET, "AAPL", date(2024, 1, 17))}
    assert all(t.event["v"] == final[t.event["s"]] for t in events if t.event["ev"] == "AM")
    trades = [t for t in events if t.event["ev"] == "T"]
    assert all(t.at_ns // 10**6 == t.event["t"] for t in trades)


def test_trades_are_sent_when_reported_with_increasing_sequence_numbers() -> None:
    events = _events(START, START + 30 * NS_PER_MIN, channels=frozenset({"T"}))
    assert [t.at_ns for t in events] == sorted(t.at_ns for t in events)
    sequences = [t.event["q"] for t in events]
    assert all(a < b for a, b in zip(sequences, sequences[1:], strict=False))
    assert any(t.at_ns // 10**6 > t.event["t"] + 60_000 for t in events), "late trades arrive late"


def test_second_aggregates_and_day_fields() -> None:
    events = _events(START, START + 5 * NS_PER_MIN, channels=frozenset({"A", "AM"}))
    seconds = [t.event for t in events if t.event["ev"] == "A"]
    assert seconds and all(e["e"] - e["s"] == 1000 for e in seconds)
    volumes = [t.event["av"] for t in events]
    assert volumes == sorted(volumes), "day volume only grows"
    assert all("op" in t.event and t.event["a"] > 0 for t in events)
