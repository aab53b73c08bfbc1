"""The simulator's trades: deterministic, random access, only in NYSE sessions, plausible."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta

import pytest

from chronox_stream.domain.conditions import NO_OPEN_CLOSE, NO_VOLUME, ODD_LOT
from chronox_stream.domain.market_calendar import NEW_YORK
from chronox_stream.sim import market as market_module
from chronox_stream.sim.history import minute_bars
from chronox_stream.sim.market import LATE_WINDOW_NS, Market, Trade
from chronox_stream.sim.sessions import NS_PER_MIN, closures, from_ns, to_ns, trading_day

MARKET = Market(7)
REGULAR_DAY = date(2024, 1, 17)
EARLY_CLOSE = date(2023, 11, 24)  # Black Friday: regular session to 13:00


def _ny(day: date, hour: int, minute: int = 0) -> int:
    return to_ns(datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK))


def _local(trade: Trade) -> time:
    return from_ns(trade.sip_ns).astimezone(NEW_YORK).time()


def test_same_seed_same_trades_other_seed_other_trades() -> None:
    first = MARKET.day("AAPL", REGULAR_DAY)
    market_module.day_columns.cache_clear()
    market_module.day_trades.cache_clear()
    assert Market(7).day("AAPL", REGULAR_DAY) == first
    assert Market(8).day("AAPL", REGULAR_DAY) != first
    assert MARKET.day("MSFT", REGULAR_DAY) != first


@pytest.mark.parametrize("day", [REGULAR_DAY, EARLY_CLOSE])
def test_any_minute_alone_equals_its_slice_of_the_day(day: date) -> None:
    whole = MARKET.day("NVDA", day)
    for minute in range(_ny(day, 3, 50), _ny(day, 20, 10), 7 * NS_PER_MIN):
        alone = MARKET.minute("NVDA", minute)
        assert alone == tuple(t for t in whole if minute <= t.sip_ns < minute + NS_PER_MIN)


@pytest.mark.parametrize(
    "day", [date(2024, 1, 13), date(2024, 1, 14), date(2024, 1, 15), date(2023, 12, 25)]
)
def test_weekends_and_holidays_have_no_trades(day: date) -> None:
    assert trading_day(day) is None
    assert MARKET.day("AAPL", day) == ()
    assert minute_bars(MARKET, "AAPL", day) == ()


def test_a_regular_day_trades_from_4_to_20_new_york() -> None:
    trades = MARKET.day("AAPL", REGULAR_DAY)
    times = [_local(t) for t in trades]
    assert min(times) >= time(4, 0) and max(times) < time(20, 0)
    assert any(t < time(9, 30) for t in times) and any(t >= time(16, 0) for t in times)


def test_an_early_close_ends_regular_trading_at_13_and_after_hours_at_17() -> None:
    session = trading_day(EARLY_CLOSE)
    assert session is not None and session.early_close
    assert from_ns(session.close_ns).astimezone(NEW_YORK).time() == time(13, 0)
    times = [_local(t) for t in MARKET.day("AAPL", EARLY_CLOSE)]
    assert max(times) < time(17, 0)
    assert any(time(13, 0) <= t for t in times)
    per_minute = Counter(t.replace(second=0, microsecond=0) for t in times)
    assert max(n for m, n in per_minute.items() if m >= time(13, 0)) <= 3


def test_trades_per_minute_follow_the_session() -> None:
    trades = MARKET.day("MSFT", REGULAR_DAY)
    per_minute = Counter(t.sip_ns // NS_PER_MIN for t in trades)
    regular = [n for m, n in per_minute.items() if _ny(REGULAR_DAY, 9, 30) <= m * NS_PER_MIN]
    extended = [n for m, n in per_minute.items() if m * NS_PER_MIN < _ny(REGULAR_DAY, 9, 30)]
    assert max(extended) <= 3 and max(regular) <= 25
    regular_minutes = range(_ny(REGULAR_DAY, 9, 30), _ny(REGULAR_DAY, 16), NS_PER_MIN)
    quiet = [m for m in regular_minutes if m // NS_PER_MIN not in per_minute]
    assert 0 < len(quiet) < 60, "some, not many, regular minutes without trades"


def test_trade_fields_are_plausible() -> None:
    trades = MARKET.day("AAPL", REGULAR_DAY)
    allowed = {0, 14, ODD_LOT} | NO_OPEN_CLOSE | NO_VOLUME
    for t in trades:
        assert 1 <= t.size <= 500 and t.cents > 0
        assert (ODD_LOT in t.conditions) == (t.size < 100)
        assert set(t.conditions) <= allowed
        minute_end = t.sip_ns - t.sip_ns % NS_PER_MIN + NS_PER_MIN
        assert t.report_ns == t.sip_ns or minute_end < t.report_ns < minute_end + LATE_WINDOW_NS
        assert (t.trf_id is not None) == (t.exchange == 4) == (t.trf_ns is not None)
        assert t.participant_ns < t.sip_ns
    conditions = Counter(c for t in trades for c in t.conditions)
    assert conditions[14] > conditions[0] > conditions[33] > 0
    assert 0 < sum(t.late for t in trades) < len(trades) / 10
    assert len({t.trade_id for t in trades}) == len(trades)


def test_sequence_numbers_increase_in_report_order() -> None:
    trades = sorted(MARKET.day("TSLA", REGULAR_DAY), key=lambda t: t.report_ns)
    sequences = [t.sequence for t in trades]
    assert all(a < b for a, b in zip(sequences, sequences[1:], strict=False))


def test_prices_move_smoothly_from_minute_to_minute() -> None:
    bars = minute_bars(MARKET, "AAPL", REGULAR_DAY)
    jumps = [abs(b.open / a.close - 1) for a, b in zip(bars, bars[1:], strict=False)]
    assert max(jumps) < 0.01
    days = [REGULAR_DAY - timedelta(days=i) for i in range(10)]
    closes = [bars[-1].close for d in days if (bars := minute_bars(MARKET, "AAPL", d))]
    assert len(set(closes)) == len(closes), "the path moves across days"


def test_closures_name_holidays_and_early_closes() -> None:
    found = {c.day: c for c in closures(date(2024, 1, 1), date(2024, 12, 31))}
    assert found[date(2024, 3, 29)].status == "closed"
    assert found[date(2024, 1, 15)].name.startswith("Dr. Martin Luther King")
    assert found[date(2024, 7, 3)].status == "early-close"
    assert date(2024, 1, 13) not in found, "weekends are not listed"
