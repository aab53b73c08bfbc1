"""Stream bars agent: the tick aggregator's bars through dedup onto the bar topics.

The tick aggregator runs outside Faust's event loop for speed, so it cannot
write the dedup table (a Faust table is written while processing an event of
the partition that owns the key). Its bars take one more hop, on the internal
``ticks.bars`` topic keyed by symbol, to this agent, which emits them like any
phase does: dedup with source ``stream`` (a correction passes, a bar the api
or a flat file already gave does not), then the bar topics. Closed minutes
also move each symbol's ``last_stream`` in the registry, once per batch.

Bars are taken in batches, one dedup decision and one wait for Kafka per
partition of a batch, not per bar: a catch-up after downtime brings thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeAlias

from faust.types import EventT

from chronox_stream.contracts.envelope import decode_bar
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.runtime.app import Runtime
from chronox_stream.runtime.emit import Emitter, LivePolicy
from chronox_stream.runtime.loop import isolate
from chronox_stream.tables.partition import writing_for

BATCH_SIZE = 2_000
BATCH_WITHIN_S = 0.05

Decoded: TypeAlias = tuple[EventT[Any], Bar]


async def emit_partition(runtime: Runtime, emitter: Emitter, events: Sequence[EventT[Any]]) -> None:
    """Emit the bars of one partition's events; dead-letter what is not a stream bar.

    The bars go out together (one dedup decision, one wait for Kafka); if that fails
    for a reason other than the world's, the batch is split (the batch loop's
    :func:`~chronox_stream.runtime.loop.isolate`) until the bar at fault is found, and
    only it is dead-lettered.
    """
    decoded: list[Decoded] = []
    for event in events:
        try:
            decoded.append((event, decode_stream_bar(event.value)))
        except Rejected as rejected:
            await runtime.dead_letter(event.message, rejected)
    if decoded:
        await isolate("stream bars", decoded, partial(emit_decoded, runtime, emitter),
                      partial(reject, runtime))  # fmt: skip


async def emit_decoded(runtime: Runtime, emitter: Emitter, decoded: Sequence[Decoded]) -> None:
    await emit(runtime, emitter, decoded[-1][0], [bar for _, bar in decoded])


async def reject(runtime: Runtime, item: Decoded, rejected: Rejected) -> None:
    await runtime.dead_letter(item[0].message, rejected)


def decode_stream_bar(raw: bytes | None) -> Bar:
    """The bar of a ``ticks.bars`` envelope; ``Rejected`` unless it is a v1 stream bar."""
    bar, source = decode_bar(raw or b"")
    if source != "stream":
        message = f"source {source!r}: this topic carries stream bars only"
        raise Rejected("invalid_envelope", message)
    return bar


async def emit(runtime: Runtime, emitter: Emitter, event: EventT[Any], bars: list[Bar]) -> None:
    """Emit ``bars`` (all of ``event``'s partition) and move their symbols' ``last_stream``."""
    with writing_for(event):
        await emitter.emit(bars, "stream")
    streamed: dict[str, datetime] = {}
    for bar in bars:
        if bar.tf == "1m":
            streamed[bar.symbol] = max(streamed.get(bar.symbol, bar.ts), bar.ts)
    for symbol, latest in streamed.items():
        if runtime.tables.registry.get(symbol) is not None:
            at = latest + timedelta(minutes=1)
            await runtime.send_registry(RegistryCommand(op="streamed", symbol=symbol, at=at))


def attach(runtime: Runtime) -> None:
    emitter = runtime.emitter(LivePolicy())

    @runtime.app.agent(runtime.topics.ticks_bars, name="chronox.agents.stream_bars", concurrency=1)
    async def stream_bars(stream: Any) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_S):
            by_partition: dict[int, list[EventT[Any]]] = {}
            for event in events:
                by_partition.setdefault(event.message.partition, []).append(event)
            for partition_events in by_partition.values():
                await emit_partition(runtime, emitter, partition_events)
