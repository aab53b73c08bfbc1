"""``up``, ``down`` and ``status`` of the whole stack, callable from Python and the CLI.

The three services come up concurrently (the JVM's start-up overlaps with
PostgreSQL's and Redis'); every failure is collected and raised as one
``StackError``. ``down`` stops only what our pid files name, Redis first and
Kafka last. The functions are synchronous so that scripts, ``make demo`` and
tests can call them outside an event loop.
"""

from __future__ import annotations

import asyncio

from chronox_stream.settings import Settings
from chronox_stream.stack.kafka import Kafka
from chronox_stream.stack.layout import Layout
from chronox_stream.stack.model import StackError, StackStatus, Stopped
from chronox_stream.stack.postgres import Postgres
from chronox_stream.stack.redis import Redis
from chronox_stream.stack.service import Say, Service, ensure_down, ensure_up, inspect


def _quiet(line: str) -> None:
    """The default ``Say``: progress lines go nowhere."""


def services(settings: Settings) -> tuple[Service, ...]:
    layout = Layout.from_settings(settings)
    return Kafka(settings, layout), Postgres(settings, layout), Redis(settings, layout)


async def up_async(settings: Settings, say: Say = _quiet) -> StackStatus:
    """``up`` for callers already inside an event loop."""
    layout = Layout.from_settings(settings)
    layout.create()
    stack = services(settings)
    results = await asyncio.gather(*(ensure_up(s, say) for s in stack), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        for error in errors:
            if not isinstance(error, StackError):
                raise error
        raise StackError("\n".join(str(e) for e in errors))
    return StackStatus(layout.logs, tuple(r for r in results if not isinstance(r, BaseException)))


async def status_async(settings: Settings) -> StackStatus:
    """``status`` for callers already inside an event loop."""
    stack = services(settings)
    found = await asyncio.gather(*(inspect(s) for s in stack))
    return StackStatus(Layout.from_settings(settings).logs, tuple(found))


def up(settings: Settings, say: Say = _quiet) -> StackStatus:
    """Start what is missing, reuse what answers; a no-op when everything runs.

    Returns once every service answers a real request; raises ``StackError``
    naming each service that did not, with the log to read.
    """
    return asyncio.run(up_async(settings, say))


def status(settings: Settings) -> StackStatus:
    """How each service runs now and whether it answers (only stale pid files are dropped)."""
    return asyncio.run(status_async(settings))


def down(settings: Settings) -> list[Stopped]:
    """Stop the services ``up`` started (pid files only); leave data and reused servers alone.

    Every service is tried even when one fails; the failures are raised together.
    """
    stopped: list[Stopped] = []
    errors: list[str] = []
    for service in reversed(services(settings)):
        try:
            done = ensure_down(service)
        except StackError as exc:
            errors.append(str(exc))
            continue
        if done is not None:
            stopped.append(done)
    if errors:
        raise StackError("\n".join(errors))
    return stopped
