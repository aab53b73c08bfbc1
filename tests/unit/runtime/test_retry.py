"""The one backoff: the retry loops' and the REST client's waits, drawn under their ceilings."""

from __future__ import annotations

import random

import pytest

from chronox_stream.runtime.retry import LOOP_BACKOFF
from chronox_stream.sources.polygon_rest import RetryPolicy


def test_the_loops_wait_at_most_fifteen_seconds_growing_from_a_fifth_of_one() -> None:
    assert LOOP_BACKOFF.ceiling(0) == pytest.approx(0.2)
    assert LOOP_BACKOFF.ceiling(3) == pytest.approx(1.6)
    assert LOOP_BACKOFF.ceiling(10**6) == 15.0
    rng = random.Random(5)
    assert all(0 <= LOOP_BACKOFF.delay(a, rng) <= 15.0 for a in range(100))


def test_rest_retries_wait_under_a_doubling_ceiling_capped_by_the_policy() -> None:
    policy = RetryPolicy(base_s=0.25, cap_s=1.0)
    for attempt, ceiling in [(0, 0.25), (1, 0.5), (2, 1.0), (5, 1.0)]:
        delays = [policy.delay(attempt) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling, "full jitter"


def test_a_rest_policy_that_never_waits_is_refused_when_made() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base_s=2.0, cap_s=1.0)
