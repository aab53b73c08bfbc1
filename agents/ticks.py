"""Tick aggregator: raw ticks in, the bars of every tick timeframe out, in event time.

It runs in every worker as an app task around a plain aiokafka consumer in its
own group (``<app id>-ticks``), so the workers share the raw-ticks partitions.
Not a Faust agent: a Faust stream hands over about 4,700 events/s on a 2-core
machine, a tenth of a live feed's rate, while ``getmany`` hands over batches.

Each symbol of an owned partition has a :class:`~chronox_stream.domain.tick_bars.BarBuilder`
whose state lives in memory and on the compacted ``ticks.state`` changelog, in the
partition of the same number. The aggregator is a handler of the batch loop
(:mod:`chronox_stream.runtime.loop`), which owns the order of effects and the rebalance
rule. Per batch:

1. fold the ticks (each minute partial records the offset of its last tick);
2. send the bars that closed or were corrected to ``ticks.bars`` (source
   ``stream``) and wait for Kafka's acknowledgement;

then, with ``CHRONOX_TICK_LIVE_MS``, the in-progress bars of the symbols that
traded go to Redis only (``live:`` channels: never final, never on Kafka);
and at each checkpoint, about once a second (and before partitions are handed over):

3. the loop proves the partitions are still this worker's; the windows of idle
   symbols are closed and silent symbols purged, their bars sent and acknowledged;
   then the state keys changed since the last flush go to the changelog, and are
   acknowledged;
4. the loop commits the offsets of the ticks folded so far.

Flushing once a second, not per batch, keeps the changelog at one record per
window touched per second, whatever the tick rate.

A tick dated later than the wall clock (read once per batch) plus
``CHRONOX_TICK_MAX_FUTURE_MS`` is dead-lettered (``future_timestamp``) before it
touches anything: one bad clock must not move its symbol's watermark years ahead
and make every real tick late. Ticks of the past (a replay) are not limited.

A feed marker on the raw ticks topic (``{"symbol", "complete_from"}``, the leader
sends one per symbol at each subscription, reconnect and hand-over) is kept per
symbol in the state (``c|SYMBOL``): windows that began before it are never
emitted from ticks. When one closes, or a tick reaches one that has closed, the
aggregator requests it from REST as an api backfill (``refill-…`` on the control
topic), sent before the offsets that caused it are committed. Such ticks are
valid: they are counted in a log line, not dead-lettered.

A symbol not heard for ``CHRONOX_STATE_HORIZON_DAYS`` (wall clock; the last time
is kept on the changelog under ``h|SYMBOL``, so a restart does not reset it) is
purged at a flush: its open windows are closed and sent, its keys tombstoned on
``ticks.state`` and it leaves memory. A later tick of it starts afresh.

A crash anywhere replays from the last commit onto the last written state: a
minute skips the ticks it already holds, a window marked emitted is not closed
again, and a bar sent twice is dropped by the dedup downstream. On assignment a
partition's state is read back from its changelog before its first batch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import partial

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from chronox_stream.contracts.envelope import envelopes
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.contracts.ticks import FeedMarker, parse_raw
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.refill import window_refills
from chronox_stream.domain.tick_bars import NOTHING, ONE_MINUTE, BarBuilder, Window
from chronox_stream.domain.tick_state import (
    TrackedState,
    heard_key,
    restore,
    silent_too_long,
    stamp_due,
    watermark_key,
)
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.runtime import metrics
from chronox_stream.runtime.app import Runtime
from chronox_stream.runtime.failures import rejection_for
from chronox_stream.runtime.kafka import group_consumer, producer
from chronox_stream.runtime.loop import Batch, BatchLoop, Record, deliver
from chronox_stream.runtime.names import TICKS_GROUP, TopicNames, group_id
from chronox_stream.runtime.produce import batch_sends, partition_sends
from chronox_stream.runtime.retry import best_effort, until_done
from chronox_stream.runtime.topics import read_partitions
from chronox_stream.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000
BATCH_WITHIN_MS = 100
FLUSH_EVERY_S = 1.0
DAY_MS = 86_400_000
END_OF_TIME = 2**62  # a watermark that closes and forgets every window


@dataclass(eq=False)
class SymbolBars:
    """The bars being built from one symbol's ticks, and when it last heard one.

    The watermark is per symbol: a feed replaying one symbol's day after another's
    (files, a backfilling producer) must not make the second symbol's ticks late.
    ``heard_at`` (monotonic, a restore counts) closes idle windows; ``heard_ms`` (wall
    clock, a restore does not count) decides the purge.
    """

    symbol: str
    builder: BarBuilder
    state: TrackedState
    heard_ms: int
    latest_ts: int | None = None
    heard_at: float = field(default_factory=time.monotonic)
    key: bytes = field(init=False)  # the symbol's record key

    def __post_init__(self) -> None:
        self.key = self.symbol.encode()

    def idle_watermark(self, now: float, grace_ms: int) -> int | None:
        """Event time estimated from the wall clock since the latest tick, minus the grace."""
        if self.latest_ts is None:
            return None
        return self.latest_ts + int((now - self.heard_at) * 1000) - grace_ms


def symbol_bars(
    settings: Settings, symbol: str, state: dict[str, object], now_ms: int, refills: set[Window]
) -> SymbolBars:
    """A symbol's bars from its ``state`` (empty: a new symbol), collecting its incomplete
    windows in ``refills``. A restored symbol counts as heard now, at its watermark plus
    the grace: if no tick of it follows, its open windows still close after
    ``tick_idle_close_ms``. For the purge it was last heard when its state says (``now_ms``
    if the state predates the stamp)."""
    tracked = TrackedState(state)
    builder = BarBuilder(
        [TIMEFRAMES[name] for name in settings.tick_timeframe_names],
        state=tracked,
        grace_ms=settings.tick_grace_ms,
        late_limit_ms=settings.tick_late_limit_ms,
        watermark_key=watermark_key(symbol),
        refills=refills,
    )
    stamped = state.get(heard_key(symbol))
    own = SymbolBars(symbol, builder, tracked, stamped if isinstance(stamped, int) else now_ms)
    if watermark_key(symbol) in state:
        own.latest_ts = builder.watermark + settings.tick_grace_ms
    return own


class TickAggregator:
    """Folds batches of raw ticks per symbol and publishes what they close: the batch
    loop's handler for the raw ticks (a :class:`~chronox_stream.runtime.loop.Handler`)."""

    stateful = True

    def __init__(self, runtime: Runtime, producer: AIOKafkaProducer) -> None:
        self._runtime = runtime
        self._settings = runtime.settings
        self._names = TopicNames.for_settings(runtime.settings)
        self._producer = producer
        self._partitioner = DefaultPartitioner()  # the producer's own (runtime/kafka.py)
        self._partitions: dict[int, dict[str, SymbolBars]] = {}
        self._lived_at = time.monotonic()
        self._touched: set[SymbolBars] = set()  # since the last in-progress publish, if live
        self._purged: list[tuple[int, list[tuple[bytes, bytes | None]]]] = []  # to write
        self._refills: set[Window] = set()  # incomplete windows to request from REST
        self._skipped = 0  # records of the batch not folded: refused, or feed markers

    def released(self, partitions: Collection[TopicPartition]) -> None:
        """Forget the partitions' state: read back from the changelog if assigned again."""
        for tp in partitions:
            self._partitions.pop(tp.partition, None)

    async def assigned(self, partitions: Collection[TopicPartition]) -> None:
        """Restore the partitions' state from the changelog; send what it closed."""
        fresh = [tp.partition for tp in partitions if tp.partition not in self._partitions]
        changelog = [TopicPartition(self._names.ticks_state, p) for p in fresh]
        records: dict[int, list[tuple[bytes, bytes | None]]] = {p: [] for p in fresh}
        for record in await read_partitions(self._settings, changelog):
            if record.key is not None:
                records[record.partition].append((record.key, record.value))
        pending: list[Bar] = []
        now_ms = int(time.time() * 1000)
        for partition in fresh:
            symbols = {
                symbol: symbol_bars(self._settings, symbol, state, now_ms, self._refills)
                for symbol, state in restore(records[partition]).items()
            }
            self._partitions[partition] = symbols
            for bars in symbols.values():  # windows closed before the crash, maybe unsent
                pending.extend(bars.builder.advance(bars.builder.watermark))
        await self._publish(pending)
        await self._request_refills()
        if fresh:
            log.info("tick partitions restored: %s", sorted(fresh),
                     extra={"count": sum(len(r) for r in records.values())})  # fmt: skip

    async def process(self, batch: Batch) -> None:
        """Fold and publish (steps 1 and 2 of the module docstring), then live bars."""
        now = time.monotonic()
        now_ms = int(time.time() * 1000)
        bars: list[Bar] = []
        dropped: Counter[str] = Counter()
        before: Counter[str] = Counter()
        consumed, self._skipped = 0, 0
        for tp, records in batch.items():
            symbols = self._partitions.get(tp.partition)
            if symbols is not None:
                consumed += len(records)
                bars.extend(await self._fold(symbols, records, dropped, before, now, now_ms))
        late = dropped.total()
        metrics.ticks_read(consumed, consumed - self._skipped - late, late)
        if dropped:
            log.warning("dropped ticks later than the late limit (%d ms): %s",
                        self._settings.tick_late_limit_ms, dict(dropped),
                        extra={"count": sum(dropped.values())})  # fmt: skip
        if before:
            log.info("ticks of windows before their feed was complete: not emitted, "
                     "refilled from REST: %s", dict(before),
                     extra={"count": sum(before.values())})  # fmt: skip
        await self._publish(bars)
        await self._request_refills()
        live_ms = self._settings.tick_live_ms
        if live_ms and (now - self._lived_at) * 1000 >= live_ms:
            await self._publish_live()
            self._lived_at = now

    async def _fold(
        self, symbols: dict[str, SymbolBars], records: list[Record], dropped: Counter[str],
        before: Counter[str], now: float, now_ms: int,
    ) -> list[Bar]:  # fmt: skip
        bars: list[Bar] = []
        touched = self._touched if self._settings.tick_live_ms else None
        latest_allowed = now_ms + self._settings.tick_max_future_ms
        for record in records:
            try:
                tick = parse_raw(record.value or b"")
                own = symbols.get(tick.symbol)
                key = record.key
                if key is not None and key != (tick.symbol.encode() if own is None else own.key):
                    raise Rejected("key_mismatch", "the key must be the record's symbol")
                at = tick.complete_from if isinstance(tick, FeedMarker) else tick.ts
                if at > latest_allowed:
                    raise Rejected("future_timestamp", f"time {at} is later than the "
                                   f"wall clock plus the allowance ({latest_allowed})")  # fmt: skip
            except ValueError as exc:
                await self._runtime.dead_letter(record, Rejected.of(exc))
                self._skipped += 1
                continue
            if own is None:
                own = symbols[tick.symbol] = symbol_bars(self._settings, tick.symbol, {}, now_ms,
                                                         self._refills)  # fmt: skip
            if isinstance(tick, FeedMarker):
                own.builder.complete_from(tick.symbol, tick.complete_from)
                own.heard_ms = now_ms
                self._skipped += 1
                continue
            builder = own.builder
            try:
                folded = builder.add(tick, record.offset)
            except Exception as failure:  # a tick the fold cannot take is that tick's fault
                await self._runtime.dead_letter(record, rejection_for(failure))
                self._skipped += 1
                continue
            if folded is not NOTHING:  # most ticks produce nothing
                if folded.dropped_for:
                    dropped[tick.symbol] += 1
                bars.extend(folded.bars)
            ts = tick.ts
            if builder.marked and builder.incomplete(tick.symbol, ONE_MINUTE, ts - ts % 60_000):
                before[tick.symbol] += 1
            own.heard_at = now
            own.heard_ms = now_ms
            if touched is not None:
                touched.add(own)
            latest = own.latest_ts
            if latest is None or ts > latest:
                own.latest_ts = ts
        return bars

    def _close_idle(self, now: float) -> list[Bar]:
        """Close the windows of symbols silent for ``tick_idle_close_ms``: a quiet symbol's
        last minute should not wait for its next trade."""
        idle_ms = self._settings.tick_idle_close_ms
        if not idle_ms:
            return []
        bars: list[Bar] = []
        for symbols in self._partitions.values():
            for own in symbols.values():
                if (now - own.heard_at) * 1000 < idle_ms:
                    continue
                watermark = own.idle_watermark(now, self._settings.tick_grace_ms)
                if watermark is not None:
                    bars.extend(own.builder.advance(watermark))
        return bars

    def _purge_silent(self, now_ms: int) -> list[Bar]:
        """Purge the symbols not heard for the state horizon; stamp when the others were.

        A purged symbol's open windows are closed first (their bars are returned, to be
        sent before the state is written), then every key of it is removed: the next
        flush writes the tombstones in the partition its state lives in, before the
        offsets are committed.
        """
        horizon_ms = int(self._settings.state_horizon_days * DAY_MS)
        bars: list[Bar] = []
        for partition, symbols in self._partitions.items():
            for symbol, own in list(symbols.items()):
                if silent_too_long(own.heard_ms, now_ms, horizon_ms):
                    bars.extend(own.builder.advance(END_OF_TIME))
                    own.state.clear()
                    self._purged.append((partition, own.state.drain()))
                    self._touched.discard(own)
                    del symbols[symbol]
                    continue
                stamped = own.state.get(heard_key(symbol))
                if stamp_due(own.heard_ms, stamped if isinstance(stamped, int) else None,
                             horizon_ms):  # fmt: skip
                    own.state[heard_key(symbol)] = own.heard_ms
        if self._purged:
            log.info("purged the tick state of symbols silent for %s days",
                     self._settings.state_horizon_days,
                     extra={"count": len(self._purged)})  # fmt: skip
        return bars

    async def _publish(self, bars: list[Bar]) -> None:
        """Send ``bars`` to ``ticks.bars`` as record batches, each keyed by its symbol and
        partitioned as a send of its own would be, and wait for Kafka."""
        if not bars:
            return
        records = [(bar.symbol.encode(), payload)
                   for bar, payload in zip(bars, envelopes(bars, "stream"), strict=True)]
        await deliver(await batch_sends(self._producer, self._partitioner,
                                        self._names.ticks_bars, records))  # fmt: skip
        metrics.tick_bars_sent(bars)

    async def _request_refills(self) -> None:
        """Ask for the incomplete windows met so far from REST (api backfills on the control
        topic), and wait for Kafka: they go out before their ticks' offsets are committed."""
        if not self._refills:
            return
        windows = sorted(self._refills)
        self._refills.clear()  # in place: every builder collects into this set
        requests = [refill.request() for refill in window_refills(windows)]
        sent = await deliver(
            self._producer.send(self._names.control, request,
                                key=orjson.loads(request)["request_id"].encode())
            for request in requests
        )  # fmt: skip
        log.info("refills requested for windows before the feed was complete",
                 extra={"count": sent})  # fmt: skip

    async def _publish_live(self) -> None:
        """The in-progress bars of the symbols that traded since the last time, to Redis."""
        touched, self._touched = self._touched, set()
        bars = [bar for own in touched if own.latest_ts is not None
                for bar in own.builder.in_progress(own.symbol, own.latest_ts)]  # fmt: skip
        live = list(zip(bars, envelopes(bars, "stream", in_progress=True), strict=True))
        if live:  # best effort: an in-progress bar is superseded within milliseconds
            await best_effort("in-progress bars", partial(self._runtime.redis().publish_live, live))

    async def flush(self, partitions: Collection[TopicPartition]) -> None:
        """Step 3 of the module docstring, for ``partitions`` (proven this worker's by the
        loop): close idle windows and purge silent symbols, send their bars, then write the
        state of ``partitions`` to the changelog and wait for Kafka.

        A partition not proven (no tick read from it since assignment, inside a revocation)
        keeps its changes (windows its restore closed, a purge) for its next owner, which
        makes them again.
        """
        now_ms = int(time.time() * 1000)
        bars = self._close_idle(time.monotonic())
        bars.extend(self._purge_silent(now_ms))
        await self._publish(bars)
        await self._request_refills()
        mine = {tp.partition for tp in partitions}
        purged, self._purged = self._purged, []
        writes: list[tuple[int, bytes, bytes | None]] = []
        for partition, records in purged:
            if partition not in mine:  # kept until proven ours, dropped once released
                if partition in self._partitions:
                    self._purged.append((partition, records))
                continue
            writes.extend((partition, key, value) for key, value in records)
        for partition in sorted(mine):
            for own in self._partitions.get(partition, {}).values():
                own.builder.sync()
                writes.extend((partition, key, value) for key, value in own.state.drain())
        await deliver(partition_sends(self._producer, self._names.ticks_state, writes))


async def aggregate_ticks(runtime: Runtime) -> None:
    """One consumer's life: batches in, bars out, state and offsets flushed behind them."""
    s = runtime.settings
    names = TopicNames.for_settings(s)
    ticks_producer = producer(s, client_id=group_id(s, TICKS_GROUP))
    consumer = group_consumer(s, TICKS_GROUP)
    await ticks_producer.start()
    try:
        loop = BatchLoop("tick aggregator", consumer, TickAggregator(runtime, ticks_producer),
                         batch_size=BATCH_SIZE, within_ms=BATCH_WITHIN_MS,
                         checkpoint_every_s=FLUSH_EVERY_S, group=TICKS_GROUP)  # fmt: skip
        consumer.subscribe([names.ticks_raw], listener=loop)
        await consumer.start()
        try:
            await loop.run()
        finally:
            await consumer.stop()
    finally:
        await ticks_producer.stop()


def attach(runtime: Runtime) -> None:
    async def ticks() -> None:
        await until_done("tick aggregator", lambda: aggregate_ticks(runtime))

    runtime.app.task(ticks)
