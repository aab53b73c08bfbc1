"""Retrying I/O with capped exponential backoff and full jitter, and settling one record.

:class:`Backoff` is the one backoff of the code base (these loops, the REST client's
retries, the WebSocket client's reconnects): a wait drawn anywhere between 0 and
``initial_s * factor**attempt``, at most ``cap_s``, so clients that failed together do
not come back in step.

Three loops, one backoff:

- :func:`until_done` restarts an action whatever it raises: for the supervisor of a
  long-lived loop (a consumer), whose offsets say where to resume.
- :func:`until_world_recovers` retries an action only while it fails because the world
  does (:func:`~chronox_stream.runtime.failures.is_world_failure`); any other failure propagates.
- :func:`settle` brings one record's processing to an end: done, or dead-lettered with a
  reason. Only a world failure is retried, so a poison record never stalls its partition.

and one that does not retry: :func:`best_effort`, for writes whose loss costs nothing
lasting (the stream state for ``chronox status``, in-progress bars), which must never stop
or restart the loop they run in.

The caller's offsets stay put while an action is retried, so nothing is lost meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.runtime.failures import is_world_failure, rejection_for

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter (attempt 0 is the first retry)."""

    initial_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.cap_s:
            raise ValueError("Backoff needs 0 < initial_s <= cap_s")
        if self.factor < 1:
            raise ValueError("Backoff needs factor >= 1")

    def ceiling(self, attempt: int) -> float:
        """The longest wait of ``attempt``: ``initial_s * factor**attempt``, at most the cap."""
        # Compared in log space: factor**attempt overflows a float long before attempts run out.
        if self.factor == 1 or attempt * math.log(self.factor) < math.log(
            self.cap_s / self.initial_s
        ):
            return min(self.cap_s, self.initial_s * self.factor ** max(attempt, 0))
        return self.cap_s

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Anywhere between 0 and the ceiling (drawn from ``rng``, else the module's
        generator): clients that failed together spread out."""
        draw = random.uniform if rng is None else rng.uniform
        return draw(0, self.ceiling(attempt))


#: The loops' backoff: a supervisor or a world failure waits at most 15 s between attempts.
LOOP_BACKOFF = Backoff(initial_s=0.2, cap_s=15.0)


async def until_done(what: str, action: Callable[[], Awaitable[Any]]) -> None:
    """Run ``action`` until it succeeds, backing off between failures of any kind."""
    await _retrying(what, action, lambda failure: True)


async def until_world_recovers(what: str, action: Callable[[], Awaitable[T]]) -> T:
    """``action``'s result, retried with backoff while it fails because the world does."""
    return await _retrying(what, action, is_world_failure)


async def _retrying(
    what: str, action: Callable[[], Awaitable[T]], retryable: Callable[[Exception], bool]
) -> T:
    attempt = 0
    while True:
        try:
            return await action()
        except Exception as failure:  # asyncpg, redis and aiokafka raise their own error trees
            if not retryable(failure):
                raise
            error = failure
        delay = LOOP_BACKOFF.delay(attempt)
        attempt += 1
        log.warning("%s failed (attempt %d), retrying in %.1fs: %s: %s",
                    what, attempt, delay, type(error).__name__, error)  # fmt: skip
        await asyncio.sleep(delay)


async def settle(
    what: str,
    action: Callable[[], Awaitable[Any]],
    reject: Callable[[Rejected], Awaitable[None]],
) -> None:
    """Process one record to its end: ``action`` succeeds (world failures retried), or the
    failure that lies in the record goes to ``reject`` (which dead-letters it)."""
    try:
        await until_world_recovers(what, action)
    except Exception as failure:  # the record's: any type, as long as it is not the world's
        rejected = rejection_for(failure)
        if rejected.reason == "unprocessable":
            log.error("%s: record dead-lettered after an unexpected failure: %s",
                      what, rejected.message, exc_info=failure)  # fmt: skip
        await reject(rejected)


#: A failing best-effort write is logged at most once per this many seconds.
BEST_EFFORT_LOG_EVERY_S = 30.0
_best_effort_logged: dict[str, float] = {}


async def best_effort(what: str, action: Callable[[], Awaitable[Any]]) -> bool:
    """Run ``action`` once; on a world failure log it (sparingly) and return False.

    A failure that is not the world's is a bug and propagates.
    """
    try:
        await action()
    except Exception as failure:
        if not is_world_failure(failure):
            raise
        now = time.monotonic()
        if now - _best_effort_logged.get(what, -BEST_EFFORT_LOG_EVERY_S) >= BEST_EFFORT_LOG_EVERY_S:
            _best_effort_logged[what] = now
            log.warning("%s skipped: %s: %s", what, type(failure).__name__, failure)
        return False
    return True
