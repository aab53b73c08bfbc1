"""Bars by Polygon's condition rules, vectorised folding, and window alignment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from chronox_stream.sim.aggregate import Agg, fold, fold_columns, fold_span, roll_up, window
from chronox_stream.sim.history import day_bar, minute_bars
from chronox_stream.sim.market import Columns, Market, Trade
from chronox_stream.sim.sessions import NS_PER_MIN, NS_PER_S, ny_midnight_ns, to_ns

MINUTE = to_ns(datetime(2024, 1, 17, 15, 0, tzinfo=UTC))
CONDITIONS = [-1, 0, 14, 2, 5, 7, 10, 12, 15, 16, 22, 29, 33, 38, 52, 53]


def _trade(offset_s: int, cents: int, size: int, *conditions: int) -> Trade:
    ns = MINUTE + offset_s * NS_PER_S
    return Trade("T", ns, ns, ns, cents, size, tuple(sorted(conditions)), 12, "1", 1, 3)


def _one(trades: list[Trade]) -> Agg | None:
    return fold(trades, MINUTE, MINUTE + NS_PER_MIN)


def test_plain_trades_count_everywhere() -> None:
    bar = _one([_trade(1, 1000, 100), _trade(2, 1010, 200, 14), _trade(3, 990, 100, 0)])
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.close) == (10.0, 10.1, 9.9, 9.9)
    assert (bar.volume, bar.transactions) == (400, 3)
    assert bar.vwap == round((1000 * 100 + 1010 * 200 + 990 * 100) / (100 * 400), 4)


def test_odd_lots_count_in_volume_only() -> None:
    bar = _one([_trade(1, 1000, 100), _trade(2, 2000, 50, 37), _trade(3, 1005, 100)])
    assert bar is not None
    assert (bar.high, bar.close, bar.volume, bar.transactions) == (10.05, 10.05, 250, 3)
    assert _one([_trade(1, 1000, 50, 37)]) is None, "no trade may set open/close: no bar"


def test_official_open_and_close_prints_count_nowhere() -> None:
    bar = _one([_trade(1, 1000, 100), _trade(2, 5000, 900, 15), _trade(3, 1, 900, 16)])
    assert bar is not None
    assert (bar.high, bar.low, bar.volume, bar.transactions) == (10.0, 10.0, 100, 1)


def test_out_of_sequence_sets_high_low_but_not_open_close() -> None:
    bar = _one([_trade(1, 1000, 100), _trade(2, 1100, 100, 33), _trade(3, 1001, 100)])
    assert bar is not None
    assert (bar.open, bar.high, bar.close, bar.volume) == (10.0, 11.0, 10.01, 300)


def test_form_t_and_average_price_trades_set_no_price() -> None:
    bar = _one([_trade(1, 1000, 100, 12), _trade(2, 1020, 100), _trade(3, 1500, 100, 2)])
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (10.2, 10.2, 10.2, 10.2, 300)


def test_corrected_close_sets_prices_but_no_volume() -> None:
    bar = _one([_trade(1, 1000, 100, 38)])
    assert bar is not None
    assert (bar.close, bar.volume, bar.transactions, bar.vwap) == (10.0, 0, 0, 10.0)


def _columns(trades: list[Trade]) -> Columns:
    def col(values: list[int]) -> npt.NDArray[np.int64]:
        return np.array(values, dtype=np.int64)

    return Columns(
        symbol="T",
        sip_ns=col([t.sip_ns for t in trades]),
        participant_ns=col([t.participant_ns for t in trades]),
        report_ns=col([t.report_ns for t in trades]),
        cents=col([t.cents for t in trades]),
        size=col([t.size for t in trades]),
        condition=col([next((c for c in t.conditions if c != 37), -1) for t in trades]),
        odd_lot=np.array([37 in t.conditions for t in trades], dtype=np.bool_),
        exchange=col([t.exchange for t in trades]),
        trade_id=col([int(t.trade_id) for t in trades]),
        sequence=col([t.sequence for t in trades]),
        trf_id=col([0 for _ in trades]),
        trf_ns=col([0 for _ in trades]),
    )


_TRADES = st.lists(
    st.tuples(
        st.integers(0, 299), st.integers(1, 3000), st.integers(1, 500), st.sampled_from(CONDITIONS)
    ),
    max_size=40,
).map(
    lambda rows: [
        _trade(s, c, z, *([k] if k >= 0 else []), *([37] if z < 100 else []))
        for s, c, z, k in sorted(rows, key=lambda r: r[0])
    ]
)


@settings(max_examples=200, deadline=None)
@given(_TRADES)
def test_vectorised_folding_equals_folding_trade_records(trades: list[Trade]) -> None:
    columns = _columns(trades)
    groups: dict[int, list[Trade]] = {}
    for t in trades:
        groups.setdefault(t.sip_ns // NS_PER_MIN, []).append(t)
    expected = [
        bar
        for key, group in groups.items()
        if (bar := fold(group, key * NS_PER_MIN, (key + 1) * NS_PER_MIN)) is not None
    ]
    assert fold_columns(columns, NS_PER_MIN) == expected
    assert fold_span(columns, 0, 1) == fold(trades, 0, 1)


def test_the_day_bar_folds_every_trade_of_the_new_york_day() -> None:
    market, day = Market(7), date(2024, 1, 17)
    bar = day_bar(market, "AAPL", day)
    start = ny_midnight_ns(day)
    whole = fold(market.day("AAPL", day), start, start + 86_400 * NS_PER_S)
    assert bar == whole
    assert bar is not None and bar.start_ms == 1705467600000  # 2024-01-17 00:00 New York (EST)


def test_minute_multiples_and_hours_align_to_the_epoch() -> None:
    t = to_ns(datetime(2024, 1, 17, 14, 37, 12, tzinfo=UTC))
    assert window("minute", 5, t) == (t - 2 * 60 * NS_PER_S - 12 * NS_PER_S, t + 168 * NS_PER_S)
    start, end = window("hour", 1, t)
    assert from_utc(start) == datetime(2024, 1, 17, 14, tzinfo=UTC)
    assert end - start == 3600 * NS_PER_S
    assert window("minute", 7, t)[0] % (7 * NS_PER_MIN) == 0


def from_utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def test_day_week_month_windows_start_at_new_york_midnight_across_dst() -> None:
    sunday = to_ns(datetime(2024, 3, 10, 15, tzinfo=UTC))  # DST starts that night in New York
    start, end = window("day", 1, sunday)
    assert start == ny_midnight_ns(date(2024, 3, 10)) and end - start == 23 * 3600 * NS_PER_S
    week = window("week", 1, to_ns(datetime(2024, 1, 17, 15, tzinfo=UTC)))
    assert week == (ny_midnight_ns(date(2024, 1, 14)), ny_midnight_ns(date(2024, 1, 21)))
    month = window("month", 1, sunday)
    assert month == (ny_midnight_ns(date(2024, 3, 1)), ny_midnight_ns(date(2024, 4, 1)))
    assert window("quarter", 1, sunday)[0] == ny_midnight_ns(date(2024, 1, 1))
    assert window("year", 1, sunday)[1] == ny_midnight_ns(date(2025, 1, 1))


def test_hour_bars_roll_up_minute_bars() -> None:
    bars = minute_bars(Market(7), "MSFT", date(2024, 1, 17))
    hours = roll_up(bars, "hour", 1)
    assert sum(h.volume for h in hours) == sum(b.volume for b in bars)
    ten = next(h for h in hours if h.start_ns == to_ns(datetime(2024, 1, 17, 15, tzinfo=UTC)))
    inside = [b for b in bars if ten.start_ns <= b.start_ns < ten.end_ns]
    assert (ten.open, ten.close) == (inside[0].open, inside[-1].close)
    assert ten.high == max(b.high for b in inside) and ten.low == min(b.low for b in inside)
    assert ten.transactions == sum(b.transactions for b in inside)
    days = roll_up([b for b in bars], "day", 1)
    assert len(days) == 1 and days[0].start_ns == ny_midnight_ns(date(2024, 1, 17))
    assert days[0].end_ns - days[0].start_ns == int(timedelta(days=1).total_seconds()) * NS_PER_S
