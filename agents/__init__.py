"""Faust agents: one module each, thin shells that read a message, call the core, send the result.

Every agent runs with concurrency 1: above it faust-streaming can commit past an
in-flight message (faust-streaming issue #606), and at-least-once matters here.
"""

from __future__ import annotations

from chronox_stream.agents import (
    backfill,
    control,
    health,
    metrics,
    registry,
    scheduler,
    sink,
    stream,
    stream_bars,
    ticks,
)
from chronox_stream.runtime.app import Runtime


def attach_all(runtime: Runtime) -> None:
    """Attach every agent and task of a worker to ``runtime``'s app (before it starts)."""
    for module in (control, registry, backfill, sink, ticks, stream_bars, stream, scheduler,
                   health, metrics):  # fmt: skip
        module.attach(runtime)
