"""Running one worker process: create topics, then hand the app to a Faust worker.

Shutdown drains within a grace period. Faust's graceful stop waits until every
in-flight event is acknowledged, which never happens while, say, PostgreSQL is
down and the sink retries its batch. So a stop signal also arms a timer: when
the grace period is over the process exits at once, like a crash. That loses
nothing: unacknowledged events are redelivered, state lives in changelogs, and
every sink write is idempotent. The signal handlers wrapped here are Faust
internals (:mod:`chronox_stream.runtime.faust_shims`, checked before the worker starts).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from importlib import import_module
from typing import Any

import faust

from chronox_stream.agents import attach_all
from chronox_stream.domain.market_calendar import load_calendar
from chronox_stream.runtime import faust_shims
from chronox_stream.runtime.app import build_runtime
from chronox_stream.runtime.logs import logging_config
from chronox_stream.runtime.topics import ensure_topics
from chronox_stream.settings import Settings

log = logging.getLogger(__name__)
EXIT_AFTER_GRACE = 75
GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


class GracefulWorker(faust.Worker):
    """A Faust worker whose stop signals are bounded by ``grace_s``."""

    def __init__(self, *args: Any, grace_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grace_s = grace_s
        self._timer: threading.Timer | None = None

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self._grace_s, _exit_now, args=(self._grace_s,))
            self._timer.daemon = True
            self._timer.start()

    def _on_sigint(self) -> None:
        self._arm()
        super()._on_sigint()

    def _on_sigterm(self) -> None:
        self._arm()
        super()._on_sigterm()


def _exit_now(grace_s: float) -> None:
    log.error("not drained %.0fs after the stop signal: exiting; in-flight work is redelivered",
              grace_s)  # fmt: skip
    logging.shutdown()
    os._exit(EXIT_AFTER_GRACE)


def tune_gc() -> None:
    """Fewer, cheaper collections: a worker allocates tens of thousands of short-lived
    objects per batch (records, ticks, bars), and with the default thresholds the cyclic
    collector also walks the whole long-lived heap (Faust, aiokafka, the state) every
    few batches. What was made at start-up is frozen out of its walks."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


def preload_backfill() -> None:
    """Load now what a backfill's first request needs and a worker that never backfills does
    not: the trading calendar (pandas, exchange_calendars) and the flat-file reader (pyarrow,
    the S3 client's modules). About 1 s of CPU, paid at start rather than in that request."""
    load_calendar()
    import_module("chronox_stream.sources.flatfile_csv")
    import_module("aiobotocore.session")


def run_worker(settings: Settings) -> None:
    """Block until the worker is stopped (SIGINT/SIGTERM drain it gracefully)."""
    faust_shims.check()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
    if settings.preload_backfill:
        preload_backfill()
    runtime = build_runtime(settings)
    attach_all(runtime)
    tune_gc()
    worker = GracefulWorker(
        runtime.app,
        grace_s=settings.shutdown_grace_s,
        loop=loop,
        loglevel=settings.log_level,
        logging_config=logging_config(settings),
        quiet=True,
    )
    worker.execute_from_commandline()
