"""Aggregate pages: whole windows within the base-bar limit, chained pages cover everything once;
a late trade enters a bar only once reported."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from chronox_stream.domain.conditions import counts_in_volume
from chronox_stream.sim.aggregate import Agg, Timespan
from chronox_stream.sim.feed import feed_events
from chronox_stream.sim.history import minute_bars
from chronox_stream.sim.market import LATE_WINDOW_NS, Market
from chronox_stream.sim.pages import AggQuery, aggregate_page
from chronox_stream.sim.sessions import NS_PER_MIN, ny_midnight_ns, to_ns, trading_day

MARKET = Market(7)
FROM = ny_midnight_ns(date(2024, 1, 16))
TO = ny_midnight_ns(date(2024, 1, 18)) - 1
NOW = to_ns(datetime(2024, 1, 18, 1, 30, tzinfo=UTC))


def _query(timespan: Timespan, multiplier: int, limit: int, descending: bool = False) -> AggQuery:
    return AggQuery("AAPL", multiplier, timespan, FROM, TO, limit, descending)


def _all_pages(query: AggQuery, now: int = NOW) -> tuple[list[Agg], int]:
    bars: list[Agg] = []
    pages = 0
    while True:
        page = aggregate_page(MARKET, query, now, late_trades=True)
        pages += 1
        bars.extend(page.bars)
        if page.resume_ns is None:
            return bars, pages
        if query.descending:
            query = replace(query, to_ns=page.resume_ns)
        else:
            query = replace(query, from_ns=page.resume_ns)


@pytest.mark.parametrize(("timespan", "multiplier"), [("minute", 1), ("minute", 5), ("hour", 1)])
@pytest.mark.parametrize("descending", [False, True])
def test_small_pages_chain_to_the_single_page_answer(
    timespan: Timespan, multiplier: int, descending: bool
) -> None:
    whole = aggregate_page(
        MARKET, _query(timespan, multiplier, 50_000, descending), NOW, late_trades=True
    )
    assert whole.resume_ns is None
    paged, pages = _all_pages(_query(timespan, multiplier, 97, descending))
    assert paged == whole.bars and pages > 3
    starts = [b.start_ns for b in paged]
    assert starts == sorted(starts, reverse=descending)


def test_limit_caps_base_bars_and_drops_a_partial_last_window() -> None:
    page = aggregate_page(MARKET, _query("hour", 1, 100), NOW, late_trades=True)
    assert page.query_count <= 100 and page.resume_ns == page.bars[-1].end_ns
    minutes = minute_bars(MARKET, "AAPL", date(2024, 1, 16))
    inside = [m for m in minutes if m.start_ns < page.bars[-1].end_ns]
    assert page.query_count == len(inside)


def test_a_window_larger_than_the_limit_is_served_whole() -> None:
    next_day = to_ns(datetime(2024, 1, 19, tzinfo=UTC))
    page = aggregate_page(MARKET, _query("day", 1, 1), next_day, late_trades=True)
    assert len(page.bars) == 1 and page.resume_ns == ny_midnight_ns(date(2024, 1, 17))
    hours = aggregate_page(MARKET, _query("hour", 1, 5), NOW, late_trades=True)
    assert len(hours.bars) == 1 and hours.query_count > 5


def test_windows_still_open_at_now_are_not_served() -> None:
    now = to_ns(datetime(2024, 1, 17, 15, 30, 30, tzinfo=UTC))
    bars = aggregate_page(MARKET, _query("minute", 1, 50_000), now, late_trades=True).bars
    assert bars[-1].end_ns <= now and bars[-1].start_ns == now - 30 * 10**9 - 60 * 10**9
    days = aggregate_page(MARKET, _query("day", 1, 50_000), now, late_trades=True).bars
    assert [b.start_ns for b in days] == [ny_midnight_ns(date(2024, 1, 16))]


def test_from_and_to_select_window_starts_inclusively() -> None:
    bars = minute_bars(MARKET, "AAPL", date(2024, 1, 17))
    a, b = bars[10].start_ns, bars[20].start_ns
    page = aggregate_page(
        MARKET, AggQuery("AAPL", 1, "minute", a, b, 5000, False), NOW, late_trades=True
    )
    assert [x.start_ns for x in page.bars] == [x.start_ns for x in bars[10:21]]
    holiday = ny_midnight_ns(date(2024, 1, 15))
    empty = AggQuery("AAPL", 1, "minute", holiday, holiday + 86_400 * 10**9 - 1, 5000, False)
    assert aggregate_page(MARKET, empty, NOW, late_trades=True).bars == []


def _late_trade_minute() -> tuple[int, int]:
    """(minute start, report time) of a regular-session minute of 2024-01-17 with a late trade
    that counts in volume (the simulator's model has some on every day)."""
    session = trading_day(date(2024, 1, 17))
    assert session is not None
    for trade in MARKET.day("AAPL", session.day):
        if trade.late and counts_in_volume(trade.conditions) and trade.size >= 100:
            minute = trade.sip_ns - trade.sip_ns % NS_PER_MIN
            if session.phase(minute) == "regular":
                return minute, trade.report_ns
    raise AssertionError("no late trade on 2024-01-17")


def _minute_page(minute: int, now: int, *, late_trades: bool) -> Agg:
    query = AggQuery("AAPL", 1, "minute", minute, minute, 5000, False)
    [bar] = aggregate_page(MARKET, query, now, late_trades=late_trades).bars
    return bar


def _ohlcv(bar: Agg) -> tuple[float, ...]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap)


def test_rest_shows_a_late_trade_only_once_reported_as_the_websocket_does() -> None:
    minute, reported = _late_trade_minute()
    now = minute + NS_PER_MIN + 1
    assert reported > now, "the trade is reported after its minute has closed"
    final = next(b for b in minute_bars(MARKET, "AAPL", date(2024, 1, 17)) if b.start_ns == minute)
    early = _minute_page(minute, now, late_trades=True)
    assert early.volume < final.volume, "the late trade is not in the bar yet"
    sent = [
        e.event for e in feed_events(MARKET, "AAPL", frozenset({"AM"}), minute, now, late=True)
        if e.start_ns == minute
    ]
    last = sent[-1]
    assert (last["o"], last["h"], last["l"], last["c"], last["v"], last["vw"]) == _ohlcv(early)
    settled = minute + NS_PER_MIN + LATE_WINDOW_NS
    assert _ohlcv(_minute_page(minute, reported, late_trades=True)) != _ohlcv(early)
    assert _minute_page(minute, settled, late_trades=True) == final
    assert _minute_page(minute, now, late_trades=False) == final, "no late reports: all on time"


def test_from_is_snapped_to_the_start_of_its_window() -> None:
    pre_market = to_ns(datetime(2024, 1, 17, 9, 0, tzinfo=UTC))  # 04:00 in New York
    day = AggQuery("AAPL", 1, "day", pre_market, TO, 5000, False)
    next_day = to_ns(datetime(2024, 1, 19, tzinfo=UTC))
    assert [b.start_ns for b in aggregate_page(MARKET, day, next_day, late_trades=True).bars] == [
        ny_midnight_ns(date(2024, 1, 17))
    ]
    ten_past = to_ns(datetime(2024, 1, 17, 15, 2, tzinfo=UTC))  # 10:02 in New York
    fives = AggQuery("AAPL", 5, "minute", ten_past, TO, 5000, False)
    first = aggregate_page(MARKET, fives, NOW, late_trades=True).bars[0]
    assert first.start_ns == ten_past - 2 * 60 * 10**9
