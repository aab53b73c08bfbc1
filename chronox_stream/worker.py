"""Running one worker process: create topics, then hand the app to a Faust worker."""

from __future__ import annotations

import asyncio

import faust

from chronox_stream.app import build_runtime
from chronox_stream.logs import logging_config
from chronox_stream.settings import Settings
from chronox_stream.topics import ensure_topics


def run_worker(settings: Settings) -> None:
    """Block until the worker is stopped (SIGINT/SIGTERM drain it gracefully)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
    runtime = build_runtime(settings)
    worker = faust.Worker(
        runtime.app,
        loop=loop,
        loglevel=settings.log_level,
        logging_config=logging_config(settings),
        quiet=True,
    )
    worker.execute_from_commandline()
