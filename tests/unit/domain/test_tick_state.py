"""The tick aggregator's changelog: what a new owner restores is what the old one had."""

from __future__ import annotations

import pytest

from chronox_stream.contracts.ticks import Tick
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.tick_bars import BarBuilder, Partial
from chronox_stream.domain.tick_state import (
    TrackedState,
    decode_value,
    encode_value,
    heard_key,
    restore,
    silent_too_long,
    stamp_due,
    watermark_key,
)
from chronox_stream.domain.timeframes import TIMEFRAMES

T0 = 1_705_417_200_000  # 2024-01-16 10:00 New York
MIN = 60_000
TIMEFRAMES_USED = [TIMEFRAMES["1m"], TIMEFRAMES["5m"], TIMEFRAMES["1d"]]


def ticks(n: int) -> list[Tick]:
    return [Tick(symbol="AAPL" if i % 3 else "MSFT", ts=T0 + i * 4_000, price=100 + (i % 17) / 8,
                 size=10 + i, conditions=(37,) if i % 11 == 0 else (), sequence=i)
            for i in range(n)]  # fmt: skip


class Builders:
    """One builder per symbol, as the aggregator keeps them, each with its own state."""

    def __init__(self, restored: dict[str, dict[str, object]] | None = None) -> None:
        self.states = {s: TrackedState(state) for s, state in (restored or {}).items()}
        self.builders = {s: self._new(s) for s in self.states}

    def _new(self, symbol: str) -> BarBuilder:
        state = self.states.setdefault(symbol, TrackedState())
        return BarBuilder(TIMEFRAMES_USED, state=state, grace_ms=2_000, late_limit_ms=5 * MIN,
                          watermark_key=watermark_key(symbol))  # fmt: skip

    def add(self, tick: Tick, offset: int) -> list[Bar]:
        builder = self.builders.get(tick.symbol) or self.builders.setdefault(
            tick.symbol, self._new(tick.symbol)
        )
        return builder.add(tick, position=offset).bars

    def finish(self) -> list[Bar]:
        return [bar for b in self.builders.values() for bar in b.advance(T0 + 86_400_000)]

    def drain(self) -> list[tuple[bytes, bytes | None]]:
        for builder in self.builders.values():
            builder.sync()  # as the aggregator does before it drains
        return [record for state in self.states.values() for record in state.drain()]


def test_values_survive_the_round_trip_including_an_empty_partial() -> None:
    empty = Partial(start=T0, end=T0 + MIN)
    full = Partial(T0, T0 + MIN, 100.25, (T0 + 1, 3), 101.5, (T0 + 59_000, 9), 102.0, 99.75,
                   1_200, 121_000_000 * 10, 7, 4_242)  # fmt: skip
    for key, value in [("m|AAPL|1", empty), ("m|AAPL|2", full), ("e|AAPL|1m|1", True),
                       (watermark_key("AAPL"), T0 - 2_000), (heard_key("AAPL"), T0),
                       ("t|AAPL|1", {-(2**63), -1, 0, 2**63 - 1}),
                       ("t|AAPL|2", set())]:  # fmt: skip
        assert decode_value(key, encode_value(value)) == value


def test_only_changed_keys_are_drained_and_removals_are_tombstones() -> None:
    state = TrackedState({"w|AAPL": 5})
    state["m|AAPL|1"] = Partial(start=1, end=2)
    state["e|AAPL|1m|1"] = True
    del state["e|AAPL|1m|1"]
    records = state.drain()
    assert [(key, value is None) for key, value in records] == [
        (b"e|AAPL|1m|1", True),
        (b"m|AAPL|1", False),
    ]
    assert state.drain() == [], "a second drain has nothing new"


def test_membership_and_pop_read_the_state_and_a_pop_is_drained_as_a_tombstone() -> None:
    state = TrackedState({"w|AAPL": 5, "e|AAPL|1m|1": True})
    assert "e|AAPL|1m|1" in state and "e|AAPL|1m|2" not in state
    assert state.pop("e|AAPL|1m|1", None) is True
    assert state.pop("e|AAPL|1m|2", None) is None, "a missing key gives the default"
    with pytest.raises(KeyError):
        state.pop("e|AAPL|1m|2")
    assert "e|AAPL|1m|1" not in state
    assert state.drain() == [(b"e|AAPL|1m|1", None)], "only the removed key, as a tombstone"


def test_a_builder_restored_from_drained_records_goes_on_as_if_never_stopped() -> None:
    """Crash after the changelog write of batch k: the next owner restores the records
    and reads on from the committed offset, and the bars are those of one run."""
    stream = ticks(600)
    whole: list[Bar] = []
    one = Builders()
    for offset, t in enumerate(stream):
        whole.extend(one.add(t, offset))
    whole.extend(one.finish())

    changelog: list[tuple[bytes, bytes | None]] = []
    parts: list[Bar] = []
    first = Builders()
    for batch_start in range(0, 350, 50):
        for offset in range(batch_start, batch_start + 50):
            parts.extend(first.add(stream[offset], offset))
        changelog.extend(first.drain())
    second = Builders(restore(changelog))
    assert set(second.builders) == {"AAPL", "MSFT"}
    for offset in range(330, len(stream)):  # read again from an older committed offset
        parts.extend(second.add(stream[offset], offset))
    parts.extend(second.finish())
    assert sorted(parts, key=str) == sorted(whole, key=str)
    assert len(whole) > 40


DAY = 86_400_000


def test_a_symbol_is_purged_only_after_the_horizon_of_wall_clock_silence() -> None:
    now = 1_800_000_000_000
    assert not silent_too_long(now - 30 * DAY, now, 30 * DAY)
    assert silent_too_long(now - 30 * DAY - 1, now, 30 * DAY)
    assert not silent_too_long(now, now, 30 * DAY), "a replay of old ticks is heard now"


def test_the_heard_stamp_moves_rarely() -> None:
    horizon = 30 * DAY
    assert stamp_due(T0, None, horizon), "a symbol without a stamp gets one"
    assert not stamp_due(T0 + 3_599_999, T0, horizon), "an active symbol: once an hour"
    assert stamp_due(T0 + 3_600_000, T0, horizon)
    assert stamp_due(T0 + 1_000, T0, 10_000), "a tenth of a short horizon"
    assert not stamp_due(T0 + 999, T0, 10_000)


def test_the_trades_and_the_heard_stamp_are_restored_with_the_rest() -> None:
    state = TrackedState()
    state["t|AAPL|5"] = {1, 2}
    state[heard_key("AAPL")] = T0
    state["m|AAPL|5"] = Partial(start=5, end=6)
    changelog = state.drain()
    restored = restore(changelog)
    assert restored == {"AAPL": {"t|AAPL|5": {1, 2}, "h|AAPL": T0, "m|AAPL|5": Partial(5, 6)}}
    state.clear()  # a purge
    tombstones = state.drain()
    assert {key for key, value in tombstones if value is None} == {key for key, _ in changelog}
    assert restore(changelog + tombstones) == {}, "a purged symbol is not restored"


def test_a_flush_writes_each_minute_once_with_every_tick_folded_since_the_last() -> None:
    builders = Builders()
    for offset, t in enumerate(ticks(12)):  # AAPL and MSFT, all in the first minute
        builders.add(t, offset)
    first = dict(builders.drain())
    assert sorted(first) == [b"m|AAPL|1705417200000", b"m|MSFT|1705417200000",
                             b"w|AAPL", b"w|MSFT"]  # fmt: skip
    minute = decode_value("m|AAPL|1705417200000", first[b"m|AAPL|1705417200000"])
    assert isinstance(minute, Partial) and minute.transactions == 8 and minute.position == 11
    more = Builders(restore(list(first.items())))
    for offset, t in enumerate(ticks(15)[12:], start=12):
        more.add(t, offset)
    second = dict(more.drain())
    again = decode_value("m|AAPL|1705417200000", second[b"m|AAPL|1705417200000"])
    assert isinstance(again, Partial) and again.transactions == 10 and again.position == 14
    assert decode_value("w|AAPL", second[b"w|AAPL"]) == T0 + 14 * 4_000 - 2_000
