"""Complete or not emitted: feed markers, which windows a feed holds whole, and their refills."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from chronox_stream.contracts.control import parse_backfill_request
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.contracts.ticks import FeedMarker, Tick, parse_raw, parse_tick
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.refill import window_refills
from chronox_stream.domain.tick_bars import BarBuilder, Window, first_complete_window
from chronox_stream.domain.tick_state import TrackedState, restore
from chronox_stream.domain.timeframes import TIMEFRAMES

MIN = 60_000
TFS = [TIMEFRAMES[name] for name in ("1m", "5m", "1h", "1d")]
LATE_LIMIT = 15 * MIN


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


SUBSCRIBED = ms("2024-01-16T15:03:20+00:00")  # 10:03:20 in New York


def tick(at: int, price: float = 100.0, symbol: str = "AAPL") -> Tick:
    return Tick(symbol=symbol, ts=at, price=price, size=100)


def builder(state: dict[str, object] | None = None) -> BarBuilder:
    return BarBuilder(TFS, state={} if state is None else state, grace_ms=0,
                      late_limit_ms=LATE_LIMIT, watermark_key="w|AAPL")  # fmt: skip


def emitted(bars: Any) -> set[tuple[str, datetime]]:
    return {(bar.tf, bar.ts) for bar in bars}


@pytest.mark.parametrize(
    ("tf", "complete_from", "first"),
    [
        ("1m", "2024-01-16T15:03:20", "2024-01-16T15:04:00"),  # mid-minute: the next one
        ("1m", "2024-01-16T15:03:00", "2024-01-16T15:03:00"),  # on a boundary: that one
        ("5m", "2024-01-16T15:03:20", "2024-01-16T15:05:00"),
        ("1h", "2024-01-16T15:03:20", "2024-01-16T16:00:00"),
        ("1d", "2024-01-16T15:03:20", "2024-01-17T05:00:00"),  # New York's next midnight
        ("1d", "2024-01-16T05:00:00", "2024-01-16T05:00:00"),
    ],
)
def test_a_feed_holds_whole_windows_from_its_marker_rounded_up(
    tf: str, complete_from: str, first: str
) -> None:
    at = ms(f"{complete_from}+00:00")
    assert first_complete_window(at, TIMEFRAMES[tf]) == ms(f"{first}+00:00")


def test_a_marker_parses_and_round_trips_and_a_tick_still_parses_as_one() -> None:
    marker = parse_raw(b'{"symbol": "AAPL", "complete_from": 1705417400001}')
    assert marker == FeedMarker("AAPL", 1705417400001)
    assert parse_raw(marker.to_json()) == marker
    raw_tick = b'{"symbol": "AAPL", "ts": 1705417400001, "price": 1.5, "size": 3}'
    assert parse_raw(raw_tick) == parse_tick(raw_tick)
    with pytest.raises(Rejected) as refused:
        parse_tick(marker.to_json())  # a consumer of ticks only does not take it for a trade
    assert refused.value.reason == "unknown_field"


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"symbol": "AAPL", "complete_from": 1705417400001, "price": 1.0}, "unknown_field"),
        ({"symbol": "aapl", "complete_from": 1705417400001}, "invalid_symbol"),
        ({"complete_from": 1705417400001}, "missing_field"),
        ({"symbol": "AAPL", "complete_from": True}, "invalid_type"),
        ({"symbol": "AAPL", "complete_from": "1705417400001"}, "invalid_type"),
        ({"symbol": "AAPL", "complete_from": 1705417400.5}, "invalid_type"),
        ({"symbol": "AAPL", "complete_from": 1705417400}, "out_of_range"),  # seconds
        ({"symbol": "AAPL", "complete_from": 2**63}, "out_of_range"),
    ],
)
def test_a_broken_marker_is_refused_with_a_reason(doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_raw(orjson.dumps(doc))
    assert refused.value.reason == reason


def test_windows_before_the_marker_are_refilled_when_they_close_not_emitted() -> None:
    bars = builder()
    bars.complete_from("AAPL", SUBSCRIBED)
    minute = ms("2024-01-16T15:03:00+00:00")
    out: list[Bar] = []
    for at in range(SUBSCRIBED, minute + 8 * MIN, 10_000):  # 10:03:20 to 10:10:50
        out.extend(bars.add(tick(at)).bars)
    got = emitted(out)
    assert ("1m", datetime(2024, 1, 16, 15, 3, tzinfo=UTC)) not in got, "the joined minute"
    assert {("1m", datetime(2024, 1, 16, 15, m, tzinfo=UTC)) for m in range(4, 9)} <= got
    assert ("5m", datetime(2024, 1, 16, 15, 5, tzinfo=UTC)) in got
    assert ("5m", datetime(2024, 1, 16, 15, 0, tzinfo=UTC)) not in got
    assert bars.take_refills() == [
        Window("AAPL", "1m", minute, minute + MIN),
        Window("AAPL", "5m", ms("2024-01-16T15:00:00+00:00"), ms("2024-01-16T15:05:00+00:00")),
    ]
    assert bars.take_refills() == [], "handed out once"
    closing = bars.advance(ms("2024-01-17T06:00:00+00:00"))
    assert not [bar for bar in closing if bar.tf in ("1h", "1d")], "joined hour and day"
    assert {(w.timeframe, w.start) for w in bars.take_refills()} >= {
        ("1h", ms("2024-01-16T15:00:00+00:00")), ("1d", ms("2024-01-16T05:00:00+00:00"))}


def test_late_trades_of_minutes_before_the_subscription_ask_for_a_refill_only() -> None:
    bars = builder()
    bars.complete_from("AAPL", SUBSCRIBED)
    early = ms("2024-01-16T14:58:10+00:00")  # reported late, after the subscription
    assert bars.add(tick(early)).bars == ()
    bars.add(tick(SUBSCRIBED + 50_000))  # 10:04:10: the early minute closes
    bars.add(tick(SUBSCRIBED + 70_000))
    refilled = bars.take_refills()
    assert Window("AAPL", "1m", early - 10_000, early + 50_000) in refilled
    again = bars.add(tick(early + 5_000))  # another late trade of that closed minute
    assert again.bars == () and not again.dropped_for
    assert Window("AAPL", "1m", early - 10_000, early + 50_000) in bars.take_refills()
    way_back = bars.add(tick(ms("2024-01-16T14:20:00+00:00")))  # past the late limit
    assert way_back.dropped_for == (), "a trade REST has: refilled, not dropped"
    assert Window("AAPL", "1m", ms("2024-01-16T14:20:00+00:00"),
                  ms("2024-01-16T14:21:00+00:00")) in bars.take_refills()  # fmt: skip


def test_only_the_latest_marker_counts_and_a_reconnect_makes_open_windows_incomplete() -> None:
    bars = builder()
    bars.complete_from("AAPL", SUBSCRIBED)
    bars.add(tick(SUBSCRIBED + 60_000))  # 10:04:20, in a complete minute
    reconnect = SUBSCRIBED + 100_000  # 10:05:00
    bars.complete_from("AAPL", reconnect)
    bars.complete_from("AAPL", SUBSCRIBED)  # an older marker (another producer) changes nothing
    out = bars.add(tick(reconnect + 65_000)).bars
    assert emitted(out) == set(), "10:04 was open at the reconnect: incomplete now"
    assert Window("AAPL", "1m", SUBSCRIBED + 40_000, reconnect) in bars.take_refills()
    out = bars.add(tick(reconnect + 125_000)).bars
    assert emitted(out) == {("1m", datetime(2024, 1, 16, 15, 6, tzinfo=UTC))}


def test_a_symbol_without_a_marker_is_complete_and_markers_are_per_symbol() -> None:
    bars = builder()
    bars.complete_from("MSFT", SUBSCRIBED)
    out = [*bars.add(tick(SUBSCRIBED)).bars, *bars.add(tick(SUBSCRIBED, symbol="MSFT")).bars]
    out += bars.add(tick(SUBSCRIBED + MIN)).bars
    out += bars.add(tick(SUBSCRIBED + MIN, symbol="MSFT")).bars
    assert {(bar.symbol, bar.tf) for bar in out} == {("AAPL", "1m")}
    # in progress: the complete minute only, not the joined 5m or hour
    assert [bar.tf for bar in bars.in_progress("MSFT", SUBSCRIBED + MIN)] == ["1m"]


def test_the_marker_survives_a_restart_from_the_changelog() -> None:
    state = TrackedState()
    bars = builder(state)  # type: ignore[arg-type]
    bars.complete_from("AAPL", SUBSCRIBED)
    bars.add(tick(SUBSCRIBED))
    bars.sync()
    restored = restore(state.drain())["AAPL"]
    again = builder(restored)
    out = again.add(tick(SUBSCRIBED + MIN)).bars
    assert emitted(out) == set() and again.take_refills()[0].start == SUBSCRIBED - 20_000


def test_refills_come_as_few_valid_api_requests() -> None:
    minute = ms("2024-01-16T15:03:00+00:00")
    windows = [
        Window("AAPL", "1m", minute, minute + MIN),
        Window("AAPL", "1m", minute - 5 * MIN, minute - 4 * MIN),
        Window("MSFT", "1m", minute - 5 * MIN, minute + MIN),
        Window("MSFT", "1d", ms("2024-01-16T05:00:00+00:00"), ms("2024-01-17T05:00:00+00:00")),
    ]
    refills = window_refills(windows)
    assert [(r.timeframe, r.start_ms, r.end_ms, r.symbols) for r in refills] == [
        ("1d", ms("2024-01-16T05:00:00+00:00"), ms("2024-01-17T05:00:00+00:00"), ("MSFT",)),
        ("1m", minute - 5 * MIN, minute + MIN, ("AAPL", "MSFT")),
    ]
    request = parse_backfill_request(refills[1].request(), now=datetime(2024, 1, 17, tzinfo=UTC))
    assert request.strategy == ("api",) and request.symbols == ("AAPL", "MSFT")
