"""Stream agent: the leader's WebSocket to Polygon, feeding the raw ticks topic.

An API key may hold one connection: a second one kicks the first off. So one
worker streams, the consumer group's leader (Faust elects one at every
rebalance; when the leader dies, the rebalance that follows elects another,
which connects). Every second each worker checks whether it leads and, if so,
keeps the subscriptions in line with the registry (enabled symbols with
``stream`` in their strategy) without reconnecting; with nothing to stream it
holds no connection.

Trades (``T`` events) go to ``<prefix>.ticks.raw`` keyed by symbol as raw-tick
JSON, where the tick aggregator takes them like any other feed's; an event that
is not a valid trade is dead-lettered.

Feed markers and refills. A symbol's feed is complete only from its
subscription on (a new symbol, a reconnect, a new leader): the minute in
progress then, and the wider windows around it, hold a part of their trades,
trades of earlier minutes that the server reports late arrive alone, and
trades sent while the connection was down are not replayed. So before a
symbol's first trade on a subscription the leader writes a feed marker
(:class:`~chronox_stream.contracts.ticks.FeedMarker`) to the raw ticks topic, keyed by the
symbol (one producer, one partition: it comes before those trades), and the
tick aggregator emits no bar of an earlier window from ticks. The marker's time
is the stream's event time: the latest trade time received (any symbol) plus
1 ms. Since the server may first deliver late-reported trades, whose times are
old, the symbol's trades are held back for :data:`SETTLE_S` after its first
one, time for current trades to show where the event time stands.

With the marker the leader plans the refill (:mod:`chronox_stream.domain.refill`) of
what the feed missed: the windows from the moment the symbol was last known
complete (the latest trade before a disconnect; for a new leader the latest
trade on the raw ticks topic; for a new symbol the stream's event time at its
subscription; else the marker itself), reaching back by the late limit, to
the marker's window, each requested from REST once the stream is past its end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

import aiohttp
import orjson

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.contracts.ticks import FeedMarker, Tick, parse_tick, tick_from_polygon
from chronox_stream.domain.refill import Outage, Refill, refills
from chronox_stream.domain.registry import streaming_symbols
from chronox_stream.runtime import kafka
from chronox_stream.runtime.app import Runtime
from chronox_stream.runtime.names import TopicNames, stream_state_key
from chronox_stream.runtime.retry import best_effort, until_done
from chronox_stream.runtime.topics import partitions_of, read_partitions
from chronox_stream.settings import Settings
from chronox_stream.sources.polygon_ws import ConnectionChange, PolygonStream

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
#: The stream state for ``chronox status`` expires this long after the leader last wrote it.
STREAM_STATE_TTL_S = 10
#: How long a symbol's first trades on a subscription are held before its feed marker.
SETTLE_S = 1.0


class StreamOwner:
    """The connection of the leading worker: ticks out, outages tracked, refills sent."""

    def __init__(self, runtime: Runtime, session: aiohttp.ClientSession) -> None:
        s = runtime.settings
        self._runtime = runtime
        self._names = TopicNames.for_settings(s)
        self._producer = kafka.producer(s, client_id=f"{s.app_id}-stream")
        self.stream = PolygonStream(
            session,
            url=s.polygon_ws_url,
            api_key=s.polygon_api_key.get_secret_value(),
            on_events=self.on_events,
            on_connection=self.on_connection,
            idle_timeout_s=s.ws_idle_timeout_s,
            allow_insecure=s.allow_insecure_urls,
        )
        self._task: asyncio.Task[None] | None = None
        self._latest_ts: int | None = None  # event time: the latest trade received
        self._outage_from: int | None = None  # event time when the feed was last complete
        self._pending: list[Refill] = []
        self._symbols: set[str] = set()
        self._state: dict[str, object] = {"connected": False, "reason": "connecting"}
        self._unmarked: set[str] = set()  # subscribed; the next trade needs a marker first
        # Per symbol not yet marked: event time since when its feed may have missed trades.
        self._since: dict[str, int | None] = {}
        self._held: dict[str, tuple[float, list[Tick]]] = {}  # until when, trades held
        # Sends to the raw ticks topic one at a time: a marker before its symbol's trades.
        self._sending = asyncio.Lock()

    async def start(self) -> None:
        """Take over from whoever streamed before (see the module docstring), then connect."""
        self._outage_from = await latest_trade_ms(self._runtime.settings)
        await self._producer.start()
        self._task = asyncio.create_task(self.stream.run())

    @property
    def failed(self) -> bool:
        """The client stopped by itself: handing on a batch of trades failed (e.g. Kafka)."""
        return self._task is not None and self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # the failure that stopped it, reported once here
                log.error("stream client failed: %s: %s", type(exc).__name__, exc)
        try:
            await self.release_held(everything=True)
        finally:
            await self._producer.stop()
        if self._pending:
            log.warning("stream stopped with %d refill(s) not yet due: not sent",
                        len(self._pending))  # fmt: skip

    def subscribe(self, symbols: set[str]) -> None:
        """Stream exactly ``symbols`` from now on (subscriptions change on the live connection)."""
        if symbols != self._symbols:
            for symbol in symbols - self._symbols:
                self._since[symbol] = _earliest(self._since.get(symbol), self._latest_ts)
            self._unmarked |= symbols - self._symbols
            self._unmarked &= symbols
            self._symbols = set(symbols)
            self.stream.set_symbols(symbols)

    async def on_connection(self, change: ConnectionChange) -> None:
        if change.connected:  # a new subscription of every symbol
            for symbol in self._symbols:
                self._since[symbol] = _earliest(self._since.get(symbol), self._outage_from)
            self._unmarked = set(self._symbols)
            self._outage_from = None
        else:
            await self.release_held(everything=True)
            if self._outage_from is None:
                self._outage_from = self._latest_ts
        self._state = {"connected": change.connected, "reason": change.reason,
                       "since": change.at.isoformat()}  # fmt: skip

    async def publish_state(self) -> None:
        """For ``chronox status``: the connection and its symbols; expires without a leader.

        Best effort: with Redis down the status is missing, the stream goes on.
        """
        state = {**self._state, "symbols": sorted(self._symbols)}
        key = stream_state_key(self._runtime.settings.redis_prefix)
        client = self._runtime.redis().client
        await best_effort("stream state for chronox status", partial(
            client.set, key, orjson.dumps(state), ex=STREAM_STATE_TTL_S))  # fmt: skip

    async def on_events(self, events: list[dict[str, Any]]) -> None:
        async with self._sending:
            await self._hand_on(events)
            await self._release(everything=False)

    async def _hand_on(self, events: list[dict[str, Any]]) -> None:
        deliveries = []
        now = time.monotonic()
        for event in events:
            if event.get("ev") != "T":
                continue
            try:
                tick = tick_from_polygon(event)
            except ValueError as exc:
                rejected = Rejected.of(exc)
                await self._runtime.dead_letter_bytes(
                    str(event.get("sym", "")).encode(),
                    orjson.dumps(event),
                    rejected,
                    "the WebSocket",
                )
                continue
            if tick.symbol in self._unmarked:
                self._unmarked.discard(tick.symbol)
                self._held[tick.symbol] = (now + SETTLE_S, [tick])
            elif tick.symbol in self._held:
                self._held[tick.symbol][1].append(tick)
            else:
                deliveries.append(await self._send(tick))
            if self._latest_ts is None or tick.ts > self._latest_ts:
                self._latest_ts = tick.ts
        for delivery in deliveries:
            await delivery

    async def _send(self, record: Tick | FeedMarker) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = await self._producer.send(
            self._names.ticks_raw, record.to_json(), key=record.symbol.encode()
        )
        return delivery

    async def release_held(self, *, everything: bool = False) -> None:
        """Send the feed marker of each symbol held long enough (all with ``everything``),
        then its held trades; the marker is the stream's event time plus 1 ms."""
        async with self._sending:
            await self._release(everything=everything)

    async def _release(self, *, everything: bool) -> None:
        """Markers, then the held trades, of the symbols due; the refills they call for."""
        now = time.monotonic()
        due = [s for s, (until, _) in self._held.items() if everything or until <= now]
        if not due or self._latest_ts is None:
            return
        marker = self._latest_ts + 1
        since = marker
        deliveries = []
        for symbol in due:
            _, ticks = self._held.pop(symbol)
            known = self._since.pop(symbol, None)
            since = min(since, marker if known is None else known)
            deliveries.append(await self._send(FeedMarker(symbol, marker)))
            deliveries.extend([await self._send(tick) for tick in ticks])
        for delivery in deliveries:
            await delivery
        settings = self._runtime.settings
        planned = refills(Outage(since, marker), settings.tick_timeframe_names, due,
                          settings.tick_late_limit_ms)  # fmt: skip
        self._pending.extend(planned)
        log.info("feed markers sent at %d (epoch ms); the trades missed since %d: %d refill(s) "
                 "planned", marker, since, len(planned), extra={"count": len(due)})  # fmt: skip

    async def send_due_refills(self) -> None:
        if self._latest_ts is None:
            return
        due = [r for r in self._pending if r.due(self._latest_ts)]
        for refill in due:
            request = refill.request()
            key = orjson.loads(request)["request_id"].encode()
            await self._runtime.topics.control.send(key=key, value=request)
            self._pending.remove(refill)
            log.info("refill requested", extra={"count": len(refill.symbols)})


def _earliest(*times: int | None) -> int | None:
    """The earliest of the known ``times`` (None: none is known)."""
    known = [t for t in times if t is not None]
    return min(known) if known else None


#: Latest records read per raw-ticks partition to find the latest trade: a few, in case the
#: very last ones are not valid trades.
TAIL_RECORDS = 16


async def latest_trade_ms(settings: Settings) -> int | None:
    """Event time of the latest valid trade on the raw ticks topic (None: there is none)."""
    latest: int | None = None
    topic = TopicNames.for_settings(settings).ticks_raw
    for record in await read_partitions(settings, await partitions_of(settings, topic),
                                        last=TAIL_RECORDS):  # fmt: skip
        try:
            ts = parse_tick(record.value or b"").ts
        except ValueError:
            continue
        latest = ts if latest is None else max(latest, ts)
    return latest


async def own_stream(runtime: Runtime) -> None:
    """Hold the WebSocket while this worker leads and something is to be streamed."""
    owner: StreamOwner | None = None
    async with aiohttp.ClientSession() as session:
        try:
            while True:
                wanted = streaming_symbols(runtime.tables.registry.entries())
                leads = runtime.app.is_leader()
                if owner is not None and owner.failed:
                    await owner.stop()  # its successor refills from its latest trade on
                    owner = None
                if owner is not None and not (leads and wanted):
                    await owner.stop()
                    owner = None
                    log.info("stream closed: %s", "no longer the leader" if wanted
                             else "nothing to stream")  # fmt: skip
                elif owner is None and leads and wanted:
                    owner = StreamOwner(runtime, session)
                    await owner.start()
                    log.info("stream opened by the leader", extra={"count": len(wanted)})
                if owner is not None:
                    owner.subscribe(wanted)
                    await owner.release_held()
                    await owner.send_due_refills()
                    await owner.publish_state()
                await asyncio.sleep(CHECK_EVERY_S)
        finally:
            if owner is not None:
                await owner.stop()


def attach(runtime: Runtime) -> None:
    async def stream() -> None:
        await until_done("stream owner", lambda: own_stream(runtime))

    runtime.app.task(stream)
