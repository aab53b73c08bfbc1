"""Snapshot, previous close, open-close, market status and the flat-file plan, as of sim-now."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime, time
from pathlib import Path

from chronox_stream.domain.conditions import counts_in_volume
from chronox_stream.sim.clock import SimClock
from chronox_stream.sim.flatfiles import (
    AGG_HEADER,
    TRADES_HEADER,
    cache_root,
    next_publication_ns,
    planned_days,
    published_ns,
    render,
)
from chronox_stream.sim.history import day_bar, minute_bars
from chronox_stream.sim.market import Market
from chronox_stream.sim.sessions import to_ns, trading_day
from chronox_stream.sim.views import (
    market_now,
    market_upcoming,
    open_close,
    previous_close,
    snapshot,
)

MARKET = Market(7)


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return to_ns(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


def test_market_status_follows_the_sessions() -> None:
    assert market_now(_at(2024, 1, 17, 10))["market"] == "extended-hours"  # 05:00 New York
    assert market_now(_at(2024, 1, 17, 10))["earlyHours"] is True
    assert market_now(_at(2024, 1, 17, 15))["market"] == "open"
    after = market_now(_at(2024, 1, 17, 22))
    assert after["market"] == "extended-hours" and after["afterHours"] is True
    assert market_now(_at(2024, 1, 15, 15))["market"] == "closed"  # MLK day
    assert market_now(_at(2024, 1, 13, 15))["currencies"]["fx"] == "closed"  # Saturday
    assert market_now(_at(2024, 1, 17, 15))["serverTime"] == "2024-01-17T10:00:00-05:00"


def test_upcoming_lists_holidays_and_early_closes_per_exchange() -> None:
    entries = market_upcoming(_at(2024, 1, 17, 15))
    good_friday = [e for e in entries if e["date"] == "2024-03-29"]
    assert {e["exchange"] for e in good_friday} == {"NYSE", "NASDAQ"}
    assert good_friday[0]["status"] == "closed" and "open" not in good_friday[0]
    early = next(e for e in entries if e["date"] == "2024-07-03")
    assert early["status"] == "early-close"
    assert early["open"] == "2024-07-03T13:30:00.000Z"  # 09:30 New York (EDT)
    assert early["close"] == "2024-07-03T17:00:00.000Z"  # 13:00


def test_previous_close_is_the_last_trading_day_before_today() -> None:
    tuesday_after_mlk_day = _at(2024, 1, 16, 15)
    body = previous_close(MARKET, "AAPL", tuesday_after_mlk_day, late_trades=True)
    bar = day_bar(MARKET, "AAPL", date(2024, 1, 12))
    assert bar is not None and body["results"][0]["t"] == bar.start_ms
    assert body["results"][0]["T"] == "AAPL" and body["resultsCount"] == 1


def test_open_close_is_served_once_the_day_is_over() -> None:
    assert (
        open_close(MARKET, "AAPL", date(2024, 1, 17), _at(2024, 1, 17, 23), late_trades=True)
        is None
    )
    assert open_close(MARKET, "AAPL", date(2024, 1, 15), _at(2024, 1, 18), late_trades=True) is None
    body = open_close(MARKET, "AAPL", date(2024, 1, 17), _at(2024, 1, 18, 2), late_trades=True)
    bar = day_bar(MARKET, "AAPL", date(2024, 1, 17))
    assert body is not None and bar is not None
    assert (body["high"], body["low"], body["volume"]) == (bar.high, bar.low, bar.volume)
    assert {"preMarket", "afterHours"} <= set(body)


def test_snapshot_during_the_day_and_after_the_clear() -> None:
    now = _at(2024, 1, 17, 15, 30, 30)
    ticker = snapshot(MARKET, "AAPL", now, late_trades=True)["ticker"]
    closed = [b for b in minute_bars(MARKET, "AAPL", date(2024, 1, 17)) if b.end_ns <= now]
    assert ticker["min"]["t"] == closed[-1].start_ms and ticker["min"]["av"] == ticker["day"]["v"]
    assert ticker["lastTrade"]["t"] <= now and ticker["updated"] == ticker["lastTrade"]["t"]
    prev = day_bar(MARKET, "AAPL", date(2024, 1, 16))
    assert prev is not None and ticker["prevDay"]["c"] == prev.close
    new_york_0345 = _at(2024, 1, 18, 8, 45)
    cleared = snapshot(MARKET, "AAPL", new_york_0345, late_trades=True)["ticker"]
    assert cleared["day"]["v"] == 0 and cleared["prevDay"]["v"] > 0
    new_york_0200 = _at(2024, 1, 18, 7)  # yesterday still
    night = snapshot(MARKET, "AAPL", new_york_0200, late_trades=True)["ticker"]
    assert night["day"]["v"] > 0


def test_a_days_flat_files_are_published_at_eleven_new_york_the_next_day() -> None:
    eleven = time(11, 0)
    assert published_ns(date(2024, 1, 17), eleven) == _at(2024, 1, 18, 16)  # EST: UTC-5
    assert published_ns(date(2024, 7, 1), eleven) == _at(2024, 7, 2, 15)  # EDT: UTC-4
    assert published_ns(date(2024, 1, 12), eleven) == _at(2024, 1, 13, 16), "Saturday too"
    assert next_publication_ns(_at(2024, 1, 18, 1, 30), eleven) == _at(2024, 1, 18, 16)
    assert next_publication_ns(_at(2024, 1, 18, 16), eleven) == _at(2024, 1, 19, 16)


def test_flat_file_plan_and_headers() -> None:
    eleven = time(11, 0)
    now = _at(2024, 1, 18, 1, 30)  # 20:30 New York on the 17th: its files come tomorrow
    assert planned_days(now, None, None, eleven) == [
        date(2024, 1, 9), date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 12),
        date(2024, 1, 16),
    ]  # fmt: skip
    assert planned_days(_at(2024, 1, 18, 15, 59), None, None, eleven)[-1] == date(2024, 1, 16)
    assert planned_days(_at(2024, 1, 18, 16), None, None, eleven)[-1] == date(2024, 1, 17)
    assert planned_days(now, date(2024, 1, 12), None, eleven) == [
        date(2024, 1, 12), date(2024, 1, 16),
    ]  # fmt: skip
    assert planned_days(now, date(2024, 1, 8), date(2024, 1, 17), eleven)[-1] == date(2024, 1, 16)
    assert planned_days(now, date(2024, 1, 8), date(2024, 1, 17), time(0, 0))[-1] == date(
        2024, 1, 16
    ), "even at midnight the 17th is not over at 20:30"
    midnight = _at(2024, 1, 18, 5)
    assert planned_days(midnight, date(2024, 1, 8), date(2024, 1, 17), time(0, 0))[-1] == date(
        2024, 1, 17
    )
    assert planned_days(now, date(2024, 1, 13), date(2024, 1, 15), eleven) == []
    minute = gzip.decompress(render(MARKET, ["MSFT", "AAPL"], date(2024, 1, 17), "minute_aggs_v1"))
    lines = minute.decode().splitlines()
    assert lines[0] == AGG_HEADER and lines[1].startswith("AAPL,") and lines[-1].startswith("MSFT,")
    trades = render(MARKET, ["AAPL"], date(2024, 1, 17), "trades_v1")
    assert gzip.decompress(trades).decode().splitlines()[0] == TRADES_HEADER
    assert render(MARKET, ["AAPL"], date(2024, 1, 17), "trades_v1") == trades, "reproducible"


def test_the_clock_runs_at_its_speed_and_can_be_moved() -> None:
    real = [100.0]
    clock = SimClock(1_000, 60.0, real=lambda: real[0])
    real[0] += 2
    assert clock.now_ns() == 1_000 + 120 * 10**9
    clock.set(speed=0)
    real[0] += 50
    assert clock.now_ns() == 1_000 + 120 * 10**9
    clock.set(now_ns=5, speed=1)
    real[0] += 1
    assert clock.now_ns() == 5 + 10**9


def test_the_flat_file_cache_is_named_after_the_model_sources() -> None:
    root = cache_root(Path("cache"), 7, ["MSFT", "AAPL"])
    assert root.parent == Path("cache") and "-seed7-" in root.name
    assert root == cache_root(Path("cache"), 7, ["AAPL", "MSFT"]), "the order of symbols is moot"


def test_open_close_and_snapshot_count_a_late_trade_only_once_reported() -> None:
    session = trading_day(date(2024, 1, 12))
    assert session is not None
    trades = MARKET.day("NVDA", session.day)
    pending = [t for t in trades if t.report_ns > session.post_close_ns]
    assert pending, "the seeded market reports a trade of NVDA's last minutes after 20:00"
    whole = day_bar(MARKET, "NVDA", session.day)
    assert whole is not None
    at_close = session.post_close_ns
    unreported = sum(t.size for t in pending if counts_in_volume(t.conditions))
    early = open_close(MARKET, "NVDA", session.day, at_close, late_trades=True)
    assert early is not None and early["volume"] == whole.volume - unreported
    settled = max(t.report_ns for t in trades)
    later = open_close(MARKET, "NVDA", session.day, settled, late_trades=True)
    assert later is not None and later["volume"] == whole.volume
    on_time = open_close(MARKET, "NVDA", session.day, at_close, late_trades=False)
    assert on_time is not None and on_time["volume"] == whole.volume
    day = snapshot(MARKET, "NVDA", at_close, late_trades=True)["ticker"]["day"]
    assert day["v"] == whole.volume - unreported
    assert snapshot(MARKET, "NVDA", settled, late_trades=True)["ticker"]["day"]["v"] == whole.volume
