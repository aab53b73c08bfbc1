"""Aggregate pages: whole windows within the base-bar limit, chained pages cover everything once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from chronox_stream.sim.aggregate import Agg, Timespan
from chronox_stream.sim.history import minute_bars
from chronox_stream.sim.market import Market
from chronox_stream.sim.pages import AggQuery, aggregate_page
from chronox_stream.sim.sessions import ny_midnight_ns, to_ns

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
        page = aggregate_page(MARKET, query, now)
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
    whole = aggregate_page(MARKET, _query(timespan, multiplier, 50_000, descending), NOW)
    assert whole.resume_ns is None
    paged, pages = _all_pages(_query(timespan, multiplier, 97, descending))
    assert paged == whole.bars and pages > 3
    starts = [b.start_ns for b in paged]
    assert starts == sorted(starts, reverse=descending)


def test_limit_caps_base_bars_and_drops_a_partial_last_window() -> None:
    page = aggregate_page(MARKET, _query("hour", 1, 100), NOW)
    assert page.query_count <= 100 and page.resume_ns == page.bars[-1].end_ns
    minutes = minute_bars(MARKET, "AAPL", date(2024, 1, 16))
    inside = [m for m in minutes if m.start_ns < page.bars[-1].end_ns]
    assert page.query_count == len(inside)


def test_a_window_larger_than_the_limit_is_served_whole() -> None:
    next_day = to_ns(datetime(2024, 1, 19, tzinfo=UTC))
    page = aggregate_page(MARKET, _query("day", 1, 1), next_day)
    assert len(page.bars) == 1 and page.resume_ns == ny_midnight_ns(date(2024, 1, 17))
    hours = aggregate_page(MARKET, _query("hour", 1, 5), NOW)
    assert len(hours.bars) == 1 and hours.query_count > 5


def test_windows_still_open_at_now_are_not_served() -> None:
    now = to_ns(datetime(2024, 1, 17, 15, 30, 30, tzinfo=UTC))
    bars = aggregate_page(MARKET, _query("minute", 1, 50_000), now).bars
    assert bars[-1].end_ns <= now and bars[-1].start_ns == now - 30 * 10**9 - 60 * 10**9
    days = aggregate_page(MARKET, _query("day", 1, 50_000), now).bars
    assert [b.start_ns for b in days] == [ny_midnight_ns(date(2024, 1, 16))]


def test_from_and_to_select_window_starts_inclusively() -> None:
    bars = minute_bars(MARKET, "AAPL", date(2024, 1, 17))
    a, b = bars[10].start_ns, bars[20].start_ns
    page = aggregate_page(MARKET, AggQuery("AAPL", 1, "minute", a, b, 5000, False), NOW)
    assert [x.start_ns for x in page.bars] == [x.start_ns for x in bars[10:21]]
    holiday = ny_midnight_ns(date(2024, 1, 15))
    empty = AggQuery("AAPL", 1, "minute", holiday, holiday + 86_400 * 10**9 - 1, 5000, False)
    assert aggregate_page(MARKET, empty, NOW).bars == []


def test_from_is_snapped_to_the_start_of_its_window() -> None:
    pre_market = to_ns(datetime(2024, 1, 17, 9, 0, tzinfo=UTC))  # 04:00 in New York
    day = AggQuery("AAPL", 1, "day", pre_market, TO, 5000, False)
    next_day = to_ns(datetime(2024, 1, 19, tzinfo=UTC))
    assert [b.start_ns for b in aggregate_page(MARKET, day, next_day).bars] == [
        ny_midnight_ns(date(2024, 1, 17))
    ]
    ten_past = to_ns(datetime(2024, 1, 17, 15, 2, tzinfo=UTC))  # 10:02 in New York
    fives = AggQuery("AAPL", 5, "minute", ten_past, TO, 5000, False)
    assert aggregate_page(MARKET, fives, NOW).bars[0].start_ns == ten_past - 2 * 60 * 10**9
