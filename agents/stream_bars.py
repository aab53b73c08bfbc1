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
from typing import Any

from faust.types import EventT

from chronox_stream.app import Runtime
from chronox_stream.bars import Bar
from chronox_stream.emit import Emitter, LivePolicy
from chronox_stream.envelope import decode_bar
from chronox_stream.registry import RegistryCommand
from chronox_stream.rejects import Rejected
from tables.partition import writing_for

BATCH_SIZE = 2_000
BATCH_WITHIN_S = 0.05


async def emit_partition(runtime: Runtime, emitter: Emitter, events: Sequence[EventT[Any]]) -> None:
    """Emit the bars of one partition's events; dead-letter what is not a stream bar."""
    bars: list[Bar] = []
    for event in events:
        try:
            bar, source = decode_bar(event.value)
            if source != "stream":
                raise ValueError(f"source {source!r}: this topic carries stream bars only")
        except (ValueError, KeyError, TypeError) as exc:
            rejected = Rejected("invalid_envelope", f"not a v1 stream bar envelope: {exc}")
            await runtime.dead_letter(event.message, rejected)
            continue
        bars.append(bar)
    with writing_for(events[-1]):
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
