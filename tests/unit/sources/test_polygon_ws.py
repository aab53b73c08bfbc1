"""The WebSocket client's pure parts: backoff delays, subscription changes, message sizes."""

from __future__ import annotations

import random

import orjson
import pytest

from chronox_stream.sources.polygon_ws import (
    MAX_PARAMS,
    Backoff,
    subscription_diff,
    subscription_messages,
)


def test_backoff_ceilings_grow_by_the_factor_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.5, cap_s=8.0, factor=2.0)
    assert [backoff.ceiling(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert Backoff(initial_s=1.0, cap_s=100.0, factor=3.0).ceiling(2) == 9.0
    assert Backoff(initial_s=1.0, cap_s=5.0, factor=1.0).ceiling(50) == 1.0


def test_backoff_survives_attempt_counts_that_would_overflow_a_float() -> None:
    backoff = Backoff(initial_s=0.5, cap_s=30.0, factor=2.0)
    assert backoff.ceiling(5_000) == 30.0
    assert 0 <= backoff.delay(10**9, random.Random(1)) <= 30.0


def test_backoff_delays_use_the_whole_jitter_range() -> None:
    backoff = Backoff(initial_s=0.5, cap_s=8.0, factor=2.0)
    rng = random.Random(7)
    for attempt in (0, 2, 4, 9):
        ceiling = backoff.ceiling(attempt)
        delays = [backoff.delay(attempt, rng) for _ in range(500)]
        assert all(0 <= d <= ceiling for d in delays)
        assert min(delays) < 0.1 * ceiling and max(delays) > 0.9 * ceiling, "full jitter"


def test_backoff_delays_are_reproducible_with_a_seeded_rng() -> None:
    backoff = Backoff()
    first = [backoff.delay(n, random.Random(3)) for n in range(5)]
    assert first == [backoff.delay(n, random.Random(3)) for n in range(5)]


@pytest.mark.parametrize(
    "options",
    [
        {"initial_s": 0.0},
        {"initial_s": 2.0, "cap_s": 1.0},
        {"factor": 0.5},
    ],
)
def test_backoff_rejects_settings_that_never_wait_or_shrink(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**options)


def test_only_the_difference_is_sent_when_symbols_change() -> None:
    diff = subscription_diff({"AAPL", "MSFT"}, {"MSFT", "NVDA"})
    assert diff.subscribe == {"NVDA"} and diff.unsubscribe == {"AAPL"}
    assert subscription_diff({"AAPL"}, {"AAPL"}) == (frozenset(), frozenset())
    assert subscription_diff(set(), {"AAPL"}) == (frozenset({"AAPL"}), frozenset())
    assert subscription_diff({"AAPL"}, set()) == (frozenset(), frozenset({"AAPL"}))


def test_a_message_names_every_channel_of_every_symbol() -> None:
    [message] = subscription_messages("subscribe", ("T", "AM"), {"MSFT", "AAPL"})
    assert orjson.loads(message) == {
        "action": "subscribe",
        "params": "T.AAPL,AM.AAPL,T.MSFT,AM.MSFT",
    }
    [message] = subscription_messages("unsubscribe", ("T",), ["NVDA"])
    assert orjson.loads(message) == {"action": "unsubscribe", "params": "T.NVDA"}


def test_long_subscription_lists_are_chunked() -> None:
    symbols = [f"S{i:04d}" for i in range(MAX_PARAMS + 1)]  # 2 channels: 2 * MAX_PARAMS + 2 items
    messages = [orjson.loads(m) for m in subscription_messages("subscribe", ("T", "AM"), symbols)]
    sizes = [len(m["params"].split(",")) for m in messages]
    assert sizes == [MAX_PARAMS, MAX_PARAMS, 2]
    assert {m["action"] for m in messages} == {"subscribe"}
    params = [p for m in messages for p in m["params"].split(",")]
    assert len(set(params)) == len(params) == 2 * len(symbols), "each item exactly once"
    assert MAX_PARAMS <= 1000, "a params string stays a few kilobytes"


def test_the_chunk_size_can_be_chosen_and_nothing_to_send_is_no_message() -> None:
    messages = subscription_messages("subscribe", ("T",), ["A", "B", "C"], limit=2)
    assert [orjson.loads(m)["params"] for m in messages] == ["T.A,T.B", "T.C"]
    assert subscription_messages("unsubscribe", ("T",), []) == []
    assert subscription_messages("subscribe", (), ["AAPL"]) == []
