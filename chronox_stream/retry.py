"""Retrying an I/O action until it succeeds, with capped exponential backoff and full jitter.

For work that must not be skipped (a sink write, a consumer loop): the caller's
offsets stay put meanwhile, so nothing is lost while a dependency is down.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 15.0


async def until_done(what: str, action: Callable[[], Awaitable[Any]]) -> None:
    """Run ``action`` until it succeeds, backing off between failures."""
    attempt = 0
    while True:
        try:
            await action()
            return
        except Exception as failure:  # asyncpg, redis and aiokafka raise their own error trees
            error = failure
        delay = random.uniform(0, min(BACKOFF_CAP_S, 0.2 * 2**attempt))
        attempt += 1
        log.warning("%s failed (attempt %d), retrying in %.1fs: %s", what, attempt, delay, error)
        await asyncio.sleep(delay)
