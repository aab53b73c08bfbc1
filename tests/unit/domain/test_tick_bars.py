"""Ticks to bars: Polygon's fold rules, windows, and the event-time watermark."""

from __future__ import annotations

import copy
import random
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chronox_stream.contracts.ticks import Tick
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.tick_bars import BarBuilder, Partial, fold_tick, trade_key, window_of
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.sim.aggregate import Agg, fold_columns, fold_span, roll_up
from chronox_stream.sim.market import day_columns
from chronox_stream.sim.sessions import ny_midnight_ns

T0 = int(datetime(2024, 1, 16, 15, 0, tzinfo=UTC).timestamp() * 1000)  # 10:00 New York
MIN = 60_000
ONE_MINUTE, FIVE_MINUTES = TIMEFRAMES["1m"], TIMEFRAMES["5m"]


def tick(offset_ms: int, price: float, size: int = 100, *conditions: int, seq: int = 0) -> Tick:
    return Tick(symbol="AAPL", ts=T0 + offset_ms, price=price, size=size,
                conditions=conditions, sequence=seq)  # fmt: skip


def fold(ticks: list[Tick]) -> Bar | None:
    start, end = window_of(ticks[0].ts, ONE_MINUTE)
    partial = Partial(start=start, end=end)
    for t in ticks:
        partial = fold_tick(partial, t)
    return partial.bar("AAPL", ONE_MINUTE)


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


def test_windows_align_to_the_epoch_and_days_to_new_york() -> None:
    assert window_of(T0 + 59_999, ONE_MINUTE) == (T0, T0 + MIN)
    assert window_of(T0 + 7 * MIN, FIVE_MINUTES) == (T0 + 5 * MIN, T0 + 10 * MIN)
    assert window_of(T0 + 30 * MIN, TIMEFRAMES["1h"]) == (T0, T0 + 60 * MIN)
    day = TIMEFRAMES["1d"]
    assert window_of(ms("2024-01-17T04:59:59+00:00"), day) == (
        ms("2024-01-16T05:00:00+00:00"), ms("2024-01-17T05:00:00+00:00"))  # fmt: skip
    assert window_of(ms("2024-03-10T12:00:00+00:00"), day) == (
        ms("2024-03-10T05:00:00+00:00"), ms("2024-03-11T04:00:00+00:00"))  # fmt: skip


def test_conditions_decide_what_each_trade_may_set() -> None:
    bar = fold([
        tick(1_000, 100.0, 200, seq=1),
        tick(2_000, 130.0, 50, 37, seq=2),  # odd lot: volume only
        tick(3_000, 70.0, 1000, 16, seq=3),  # official open: nothing
        tick(4_000, 101.0, 300, 29, seq=4),  # seller: high/low and volume, not the close
        tick(5_000, 99.0, 100, 38, seq=5),  # corrected close: prices, no volume
    ])  # fmt: skip
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.close) == (100.0, 101.0, 99.0, 99.0)
    assert (bar.volume, bar.transactions) == (550.0, 3)
    assert bar.vwap == round((100.0 * 200 + 130.0 * 50 + 101.0 * 300) / 550, 4)


def test_a_window_without_a_price_setting_trade_has_no_bar() -> None:
    assert fold([tick(1_000, 100.0, 20, 37), tick(2_000, 100.5, 30, 37)]) is None


def test_a_volume_free_bar_has_the_close_as_vwap() -> None:
    bar = fold([tick(1_000, 100.0, 100, 38, seq=1), tick(2_000, 100.5, 100, 38, seq=2)])
    assert bar is not None and (bar.volume, bar.vwap, bar.transactions) == (0.0, 100.5, 0)


def test_ties_in_time_are_ordered_by_sequence() -> None:
    bar = fold([tick(1_000, 100.0, seq=7), tick(1_000, 99.0, seq=3), tick(1_000, 98.0, seq=5)])
    assert bar is not None and (bar.open, bar.close) == (99.0, 100.0)


@settings(max_examples=60, deadline=None)
@given(
    trades=st.lists(
        st.tuples(st.integers(0, 59_999), st.integers(1, 200_000), st.integers(0, 900),
                  st.sampled_from([(), (37,), (14,), (29,), (38,), (15,), (12, 37)])),
        min_size=1, max_size=40,
    ),
    seed=st.integers(0, 2**32),
)  # fmt: skip
def test_arrival_order_never_changes_the_bar(
    trades: list[tuple[int, int, int, tuple[int, ...]]], seed: int
) -> None:
    ticks = [tick(at, cents / 100, size, *c, seq=i) for i, (at, cents, size, c) in
             enumerate(trades)]  # fmt: skip
    shuffled = ticks[:]
    random.Random(seed).shuffle(shuffled)
    assert fold(shuffled) == fold(sorted(ticks, key=lambda t: t.order))


def builder(
    state: dict[str, object], *, grace_ms: int = 2_000, late_ms: int = 5 * MIN
) -> BarBuilder:
    return BarBuilder([ONE_MINUTE, FIVE_MINUTES], state=state, grace_ms=grace_ms,
                      late_limit_ms=late_ms)  # fmt: skip


def test_a_bar_comes_out_when_the_watermark_passes_its_window() -> None:
    b = builder({})
    assert b.add(tick(10_000, 100.0, seq=1)).bars == ()
    assert b.add(tick(61_000, 101.0, seq=2)).bars == (), "within the grace: still open"
    out = b.add(tick(62_500, 102.0, seq=3))
    assert [(bar.tf, bar.ts.minute, bar.close) for bar in out.bars] == [("1m", 0, 100.0)]


def test_a_tick_late_within_the_grace_is_included() -> None:
    b = builder({})
    b.add(tick(59_000, 100.0, seq=1))
    b.add(tick(61_000, 101.0, seq=3))
    b.add(tick(59_500, 99.0, seq=2))  # arrives after a later tick, within the grace
    closed = b.add(tick(63_000, 101.5, seq=4)).bars
    assert [(bar.close, bar.low, bar.volume) for bar in closed] == [(99.0, 99.0, 200.0)]


def test_a_later_tick_corrects_the_bar_and_a_too_late_one_is_dropped() -> None:
    b = builder({}, late_ms=2 * MIN)
    b.add(tick(30_000, 100.0, seq=1))
    first = b.add(tick(65_000, 101.0, seq=2)).bars
    assert [(bar.tf, bar.close) for bar in first] == [("1m", 100.0)]
    corrected = b.add(tick(45_000, 100.7, 300, seq=3))
    assert [(bar.tf, bar.close, bar.volume) for bar in corrected.bars] == [("1m", 100.7, 400.0)]
    assert corrected.dropped_for == ()
    b.add(tick(4 * MIN, 102.0, seq=4))  # the watermark moves past the 1m window's late limit
    too_late = b.add(tick(50_000, 90.0, seq=5))
    assert too_late.dropped_for == ("1m",), "the 5m window is still open and takes it"
    assert too_late.bars == ()


def test_closed_windows_are_forgotten_after_the_late_limit() -> None:
    state: dict[str, object] = {}
    b = builder(state, late_ms=MIN)
    for i in range(30):
        b.add(tick(i * MIN, 100.0 + i, seq=i))
    windows = [k for k, v in state.items() if isinstance(v, Partial)]
    assert len(windows) <= 6, f"only recent windows are kept, not {windows}"


def test_a_restarted_builder_goes_on_without_repeating_a_bar() -> None:
    ticks = [tick(i * 7_000, 100.0 + (i % 13) / 10, 100 + i, seq=i) for i in range(200)]
    whole: list[Bar] = []
    b = builder({})
    for t in ticks:
        whole.extend(b.add(t).bars)
    state: dict[str, object] = {}
    parts: list[Bar] = []
    first = builder(state)
    for t in ticks[:97]:
        parts.extend(first.add(t).bars)
    first.sync()  # as before a changelog flush
    second = builder(copy.deepcopy(state))  # what a new worker restores from the changelog
    for t in ticks[97:]:
        parts.extend(second.add(t).bars)
    assert parts == whole
    assert len({(bar.tf, bar.ts) for bar in whole}) == len(whole)


def as_tuple(agg: Agg) -> tuple[float, float, float, float, float, float, int]:
    return (agg.open, agg.high, agg.low, agg.close, float(agg.volume), agg.vwap, agg.transactions)


def bar_tuple(bar: Bar) -> tuple[float, float, float, float, float, float | None, int | None]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.transactions)


@pytest.mark.parametrize("symbol", ["AAPL", "NVDA"])
def test_bars_equal_the_exchanges_own_for_a_whole_session_delivered_late(symbol: str) -> None:
    """The simulator's trades of a session, in the order they are reported (late trades
    after later ones), give the simulator's own 1m, 5m and day bars, bar for bar: 5m
    bars roll up the minute bars, a day folds all of its trades."""
    day = date(2024, 1, 16)
    cols = day_columns(7, symbol, day)
    trades = sorted(cols.trades(), key=lambda t: t.report_ns)
    state: dict[str, object] = {}
    b = BarBuilder([ONE_MINUTE, FIVE_MINUTES, TIMEFRAMES["1d"]], state=state, grace_ms=2_000,
                   late_limit_ms=20 * MIN)  # fmt: skip
    final: dict[tuple[str, datetime], Bar] = {}
    for t in trades:
        out = b.add(Tick(symbol=symbol, ts=t.sip_ns // 1_000_000, price=t.price, size=t.size,
                         conditions=t.conditions, sequence=t.sequence))  # fmt: skip
        assert out.dropped_for == ()
        for bar in out.bars:
            final[(bar.tf, bar.ts)] = bar
    for bar in b.advance(ms("2024-01-18T00:00:00+00:00")):
        final[(bar.tf, bar.ts)] = bar
    midnight = ny_midnight_ns(day)
    expected = {
        "1m": fold_columns(cols, 60 * 10**9),
        "5m": roll_up([a for a in fold_columns(cols, 60 * 10**9) if a], "minute", 5),
        "1d": [fold_span(cols, midnight, ny_midnight_ns(date(2024, 1, 17)))],
    }
    for tf, aggs in expected.items():
        ours = {ts: bar_tuple(bar) for (name, ts), bar in final.items() if name == tf}
        theirs = {datetime.fromtimestamp(a.start_ms / 1000, tz=UTC): as_tuple(a)
                  for a in aggs if a is not None}  # fmt: skip
        assert ours == theirs, tf


def test_a_trade_too_late_for_its_minute_still_counts_in_the_day() -> None:
    """As Polygon: past the correction horizon a late trade shows only in the day's bar."""
    day = TIMEFRAMES["1d"]
    b = BarBuilder([ONE_MINUTE, day], state={}, grace_ms=1_000, late_limit_ms=2 * MIN)
    b.add(tick(1_000, 100.0, 100, seq=1))
    b.add(tick(10 * MIN, 101.0, 100, seq=2))
    late = b.add(tick(2_000, 99.0, 500, seq=3))
    assert late.dropped_for == ("1m",) and late.bars == ()
    bars = b.advance(ms("2024-01-17T06:00:00+00:00"))
    [day_bar] = [bar for bar in bars if bar.tf == "1d"]
    assert (day_bar.low, day_bar.volume, day_bar.transactions) == (99.0, 700.0, 3)


def test_a_replayed_tick_is_not_counted_twice() -> None:
    """After a crash the source is read again from the last committed offset, onto state
    that may already hold some of those ticks."""
    ticks = [tick(i * 5_000, 100.0 + i / 10, 100, seq=i) for i in range(40)]
    once: list[Bar] = []
    b = builder({})
    for offset, t in enumerate(ticks):
        once.extend(b.add(t, position=offset).bars)
    state: dict[str, object] = {}
    replayed: list[Bar] = []
    first = builder(state)
    for offset, t in enumerate(ticks[:25]):
        replayed.extend(first.add(t, position=offset).bars)
    first.sync()
    second = builder(copy.deepcopy(state))
    for offset, t in list(enumerate(ticks))[18:]:  # offsets 18..24 again
        replayed.extend(second.add(t, position=offset).bars)
    assert replayed == once


def test_the_bars_in_progress_are_the_open_windows_as_they_stand() -> None:
    b = BarBuilder([ONE_MINUTE, FIVE_MINUTES, TIMEFRAMES["1d"]], state={}, grace_ms=2_000,
                   late_limit_ms=5 * MIN)  # fmt: skip
    b.add(tick(61_000, 100.0, 100, seq=1))
    b.add(tick(65_000, 101.0, 300, seq=2))
    now = b.in_progress("AAPL", T0 + 65_000)
    assert [(bar.tf, bar.open, bar.close, bar.volume) for bar in now] == [
        ("1m", 100.0, 101.0, 400.0),
        ("5m", 100.0, 101.0, 400.0),
    ], "no day bar: it would merge the whole day each time"
    assert b.in_progress("AAPL", T0 + 10 * MIN) == [], "a window without trades has no bar yet"


def trade(offset_ms: int, price: float, trade_id: str | None, exchange: int | None = 4,
          seq: int = 0) -> Tick:  # fmt: skip
    return Tick(symbol="AAPL", ts=T0 + offset_ms, price=price, size=100, exchange=exchange,
                trade_id=trade_id, sequence=seq)  # fmt: skip


def test_a_repeated_trade_is_counted_once_even_as_a_correction() -> None:
    """The same trade from two producers (two workers that both believe they lead)."""
    b = builder({}, late_ms=2 * MIN)
    sent = [trade(1_000, 100.0, "11", seq=1), trade(2_000, 102.0, "12", seq=2),
            trade(3_000, 101.0, "12", exchange=8, seq=3)]  # fmt: skip  same id, other exchange
    for t in sent + sent[::-1]:  # every trade twice, the repeats in another order
        assert b.add(t, position=None).bars == ()
    [closed] = b.add(trade(63_000, 103.0, "13", seq=4)).bars
    assert (closed.open, closed.high, closed.close, closed.volume, closed.transactions) == (
        100.0, 102.0, 101.0, 300.0, 3)  # fmt: skip
    assert b.add(trade(2_000, 102.0, "12", seq=2)).bars == (), "a late repeat corrects nothing"
    [corrected] = b.add(trade(4_000, 99.0, "14", seq=5)).bars
    assert (corrected.low, corrected.volume, corrected.transactions) == (99.0, 400.0, 4)


def test_trades_without_an_id_cannot_be_told_apart() -> None:
    b = builder({})
    b.add(trade(1_000, 100.0, None))
    b.add(trade(1_000, 100.0, None))
    [closed] = b.add(trade(63_000, 103.0, None)).bars
    assert closed.volume == 200.0


def test_the_trades_of_a_minute_are_forgotten_with_its_late_limit() -> None:
    state: dict[str, object] = {}
    b = builder(state, late_ms=MIN)
    for i in range(30):
        b.add(trade(i * MIN, 100.0, str(i), seq=i))
    kept = sorted(int(k.rsplit("|", 1)[1]) for k in state if k.startswith("t|"))
    assert kept and kept[0] >= T0 + 26 * MIN, "the minutes past the late limit are gone"


def test_a_repeat_is_recognised_after_a_restart() -> None:
    state: dict[str, object] = {}
    first = builder(state)
    first.add(trade(1_000, 100.0, "7"), position=0)
    first.sync()
    second = builder(copy.deepcopy(state))  # a new owner, from the changelog
    second.add(trade(1_000, 100.0, "7"), position=1)  # the other producer's copy
    [closed] = second.add(trade(63_000, 101.0, "8"), position=2).bars
    assert closed.volume == 100.0


@given(st.integers(0, 255), st.integers(0, 255), st.text(max_size=20), st.text(max_size=20))
def test_trade_keys_differ_for_different_trades(
    exchange_a: int, exchange_b: int, id_a: str, id_b: str
) -> None:
    if (exchange_a, id_a) != (exchange_b, id_b):
        assert trade_key(exchange_a, id_a) != trade_key(exchange_b, id_b)
    assert -(2**63) <= trade_key(exchange_a, id_a) < 2**63


def test_trade_keys_tell_apart_ids_that_read_as_the_same_number() -> None:
    keys = {trade_key(4, i) for i in ["7", "07", "٧", "7 ", "+7"]}
    keys |= {trade_key(None, "7"), trade_key(300, "7"), trade_key(4, "9" * 17)}
    assert len(keys) == 8
