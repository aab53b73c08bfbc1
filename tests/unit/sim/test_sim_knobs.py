"""Knob values, their JSON updates, count-down faults, the rate limiter and the key check."""

from __future__ import annotations

from datetime import date, time

import pytest

from chronox_stream.sim.gate import RateLimiter, key_accepted
from chronox_stream.sim.knobs import KnobBoard, Knobs


def test_the_public_view_hides_the_key() -> None:
    view = Knobs(api_key="s3cret", missing_days=frozenset({date(2024, 1, 16)})).public()
    assert "s3cret" not in str(view) and view["api_key_required"] is True
    assert view["missing_days"] == ["2024-01-16"] and "api_key" not in view
    assert "s3cret" not in repr(Knobs(api_key="s3cret"))


def test_updates_are_typed_strictly() -> None:
    knobs = Knobs().updated({"fail_next": 2, "missing_days": ["2024-01-16"], "page_size": None})
    assert knobs.fail_next == 2 and knobs.missing_days == frozenset({date(2024, 1, 16)})
    assert Knobs().updated({"forbidden_tickers": ["aapl"]}).forbidden_tickers == {"AAPL"}
    assert Knobs().public()["flatfiles_publish_at"] == "11:00", "Polygon's next morning"
    early = Knobs().updated({"flatfiles_publish_at": "06:30"})
    assert early.flatfiles_publish_at == time(6, 30)
    assert early.public()["flatfiles_publish_at"] == "06:30"
    for bad in (
        {"fail_next": True},
        {"fail_next": -1},
        {"fail_rate": 2},
        {"fail_status": 404},
        {"page_size": "10"},
        {"missing_days": ["16/01/2024"]},
        {"late_trades": 1},
        {"flatfiles_publish_at": "6:30"},
        {"flatfiles_publish_at": "24:00"},
        {"flatfiles_publish_at": "11:00:00"},
        {"flatfiles_publish_at": "11:00Z"},
        {"flatfiles_publish_at": 11},
        {"nope": 1},
    ):
        with pytest.raises(ValueError):
            Knobs().updated(bad)


async def test_count_down_faults_and_reset() -> None:
    heard: list[tuple[Knobs, Knobs]] = []

    async def listener(old: Knobs, new: Knobs) -> None:
        heard.append((old, new))

    board = KnobBoard(Knobs(fail_status=503), seed=7)
    board.listen(listener)
    await board.update({"fail_next": 2, "malformed_next": 1})
    assert [board.take_failure() for _ in range(3)] == [503, 503, None]
    assert [board.take_malformed() for _ in range(2)] == [True, False]
    assert board.current.fail_next == 0
    await board.reset()
    assert board.current == Knobs(fail_status=503) and len(heard) == 2


async def test_random_faults_repeat_for_a_seed() -> None:
    async def run() -> list[int | None]:
        board = KnobBoard(Knobs(fail_rate=0.3), seed=11)
        return [board.take_failure() for _ in range(200)]

    first = await run()
    assert first == await run()
    assert 30 < first.count(500) < 90


def test_rate_limit_answers_with_the_wait() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.admit("k", 2) for _ in range(2)] == [None, None]
    now[0] += 20.5
    assert limiter.admit("k", 2) == 40
    assert limiter.admit("other", 2) is None
    now[0] += 40
    assert limiter.admit("k", 2) is None
    assert limiter.admit("k", 0) is None


async def test_a_new_rate_limit_starts_a_fresh_budget() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    board = KnobBoard(Knobs(rate_limit=1), seed=1)
    board.listen(limiter.on_knobs)
    assert limiter.admit("k", 1) is None and limiter.admit("k", 1) is not None
    await board.update({"rate_limit": 3})
    assert [limiter.admit("k", 3) is None for _ in range(4)] == [True, True, True, False]
    await board.update({"fail_next": 1})
    assert limiter.admit("k", 3) is not None, "other knobs leave the budget alone"
    await board.update({"rate_window_s": 2})
    assert limiter.admit("k", 3, 2) is None, "a new window starts a fresh budget"


def test_a_short_window_answers_with_its_own_wait() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.admit("k", 1, 2) is None
    now[0] += 0.5
    assert limiter.admit("k", 1, 2) == 2
    now[0] += 1.5
    assert limiter.admit("k", 1, 2) is None


def test_key_check() -> None:
    assert key_accepted("", None) and key_accepted("", "anything")
    assert key_accepted("k1", "k1")
    assert not key_accepted("k1", None) and not key_accepted("k1", "k2")
