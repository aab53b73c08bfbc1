"""The Faust application and the runtime its agents share.

``build_runtime`` creates one Faust app for one settings object and declares its
topics and tables; the agents of ``chronox_stream.agents`` attach themselves to
it (``chronox_stream.agents.attach_all``), so agents depend on the runtime and
never the other way round. I/O resources (HTTP session, PostgreSQL pool, Redis
client) are opened on first use inside the worker's event loop and closed when
the app shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import aiohttp
import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TopicT

from chronox_stream.contracts.dead_letters import fitted, origin_headers
from chronox_stream.contracts.envelope import refused_bar
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.contracts.status import StatusEvent
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.domain.sources import Source
from chronox_stream.runtime import faust_consumer, faust_shims, kafka, metrics
from chronox_stream.runtime.emit import EmitPolicy, Emitter
from chronox_stream.runtime.names import TopicNames
from chronox_stream.runtime.produce import batch_sends
from chronox_stream.runtime.retry import settle, until_world_recovers
from chronox_stream.runtime.topics import durability, topic_config
from chronox_stream.runtime.web_server import OwnPagesWeb
from chronox_stream.settings import Settings
from chronox_stream.sinks.decoded import Seeded
from chronox_stream.sinks.health import SinkHealth
from chronox_stream.sinks.postgres import PostgresSink
from chronox_stream.sinks.redis import RedisSink
from chronox_stream.sources.flatfiles import flat_file_store
from chronox_stream.sources.phases import DayCache, PhaseRunner
from chronox_stream.sources.polygon_rest import PolygonRest, RestLimits, RetryPolicy
from chronox_stream.sources.ratelimit import RedisRateLimiter
from chronox_stream.sources.registry import import_source_modules
from chronox_stream.tables.backfill_state import BackfillStateTable
from chronox_stream.tables.dedup import DedupTable
from chronox_stream.tables.registry import RegistryTable

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def raw_topic(app: faust.App, settings: Settings, name: str) -> TopicT:
    """A topic of raw bytes: we decode ourselves so a bad message can be dead-lettered.
    Declared with the partitions, replicas and config ``ensure_topics`` creates it with."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
        replicas=settings.topic_replication_factor,
        config=topic_config(settings, name),
    )


class Consumed(Protocol):
    """A consumed Kafka message, from Faust (``event.message``) or from aiokafka."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass
class Topics:
    control: TopicT
    registry: TopicT
    work: TopicT
    status: TopicT
    dlq: TopicT
    bars: dict[str, TopicT]
    ticks_raw: TopicT
    ticks_bars: TopicT

    @property
    def bar_names(self) -> list[str]:
        return [topic.get_topic_name() for topic in self.bars.values()]


@dataclass
class Tables:
    registry: RegistryTable
    dedup: DedupTable
    backfill_state: BackfillStateTable


@dataclass
class Runtime:
    """What every agent needs: settings, the app, its topics and tables, shared I/O clients."""

    settings: Settings
    app: faust.App
    topics: Topics
    tables: Tables
    _http: aiohttp.ClientSession | None = None
    _runner: PhaseRunner | None = None
    _postgres: PostgresSink | None = None
    _redis: RedisSink | None = None
    sink_health: SinkHealth = field(default_factory=SinkHealth)
    #: The envelopes this worker's emitters made, with their bars, for its sinks to take
    #: without decoding (``DecodedEnvelopes(..., seeded=runtime.seeded)``).
    seeded: Seeded = field(default_factory=Seeded)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def runner(self) -> PhaseRunner:
        """The phase runner (REST client, flat-file cache, coverage table), made on first use."""
        if self._runner is None:
            s = self.settings
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=s.http_timeout_s)
            )
            limiter = None
            if s.rest_requests_per_minute:
                limiter = RedisRateLimiter(
                    self.redis().client,
                    per_minute=s.rest_requests_per_minute,
                    prefix=s.redis_prefix,
                )
            rest = PolygonRest(
                self._http,
                base_url=s.polygon_rest_url,
                api_key=s.polygon_api_key,
                limiter=limiter,
                retry=RetryPolicy(retry_after_cap_s=s.rest_retry_after_cap_s),
                limits=RestLimits(max_pages=s.rest_max_pages, max_body_bytes=s.rest_max_body_bytes),
                allow_insecure=s.allow_insecure_urls,
            )
            self._runner = PhaseRunner(
                settings=s,
                rest=rest,
                days=DayCache(flat_file_store(s)),
                coverage=self.tables.backfill_state,
            )
        return self._runner

    def emitter(self, policy: EmitPolicy) -> Emitter:
        """An emitter under ``policy`` (a work item's, or the stream's): dedup table, bar
        topics, db-first writes."""

        async def send(tf: str, key: bytes, value: bytes) -> Awaitable[Any]:
            # Straight to the producer: Faust's Topic.send costs several times more per
            # message, and our exactness comes from dedup and idempotent sinks anyway.
            topic = self.topics.bars[tf].get_topic_name()
            return await self.app.producer.send(topic, key, value, None, None, None)

        async def send_batches(
            tf: str, records: Sequence[tuple[bytes, bytes]]
        ) -> Iterable[Awaitable[Awaitable[Any]]]:
            # The partitioner of Faust's producer, so a batch goes where its sends would.
            producer = self.app.producer
            return await batch_sends(faust_shims.kafka_producer(producer),
                                     producer.partitioner or DefaultPartitioner(),
                                     self.topics.bars[tf].get_topic_name(), records)  # fmt: skip

        async def write_db(rows: Sequence[tuple[Bar, Source]]) -> None:
            await (await self.postgres()).write(rows)

        async def reject(bar: Bar, source: Source, rejected: Rejected) -> None:
            await self.dead_letter_bytes(bar.symbol.encode(), refused_bar(bar, source), rejected,
                                         f"a bar of source {source}")  # fmt: skip

        return Emitter(policy, dedup=self.tables.dedup, send=send, write_db=write_db,
                       reject=reject, send_batches=send_batches,
                       seed=self.seeded.add)  # fmt: skip

    def settle_each(
        self, topic: TopicT, name: str, what: str, handle: Callable[[bytes | None], Awaitable[None]]
    ) -> None:
        """Register the agent ``name``: each event of ``topic`` in turn, its value handled to
        the end (world failures retried) or the message dead-lettered with the reason."""

        @self.app.agent(topic, name=name, concurrency=1)
        async def agent(stream: Any) -> None:
            async for event in stream.events():
                await settle(what, partial(handle, event.value),
                             partial(self.dead_letter, event.message))  # fmt: skip

    async def send_registry(self, command: RegistryCommand) -> None:
        await self.topics.registry.send(key=command.symbol.encode(), value=command.to_json())

    async def postgres(self) -> PostgresSink:
        async with self._lock:
            if self._postgres is None:
                sink = await PostgresSink.connect(
                    self.settings.postgres_dsn.get_secret_value(),
                    schema=self.settings.postgres_schema,
                    timeout_s=self.settings.postgres_timeout_s,
                )
                await sink.migrate()
                self._postgres = sink
        return self._postgres

    def redis(self) -> RedisSink:
        if self._redis is None:
            self._redis = RedisSink.connect(
                self.settings.redis_url.get_secret_value(),
                prefix=self.settings.redis_prefix,
                timeout_s=self.settings.redis_timeout_s,
            )
        return self._redis

    async def dead_letter(self, message: Consumed, rejected: Rejected) -> None:
        """Forward a consumed message's original bytes to the DLQ with the reason in headers.

        Returns once Kafka acknowledged the copy, so the caller may commit the original.
        """
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        origin = origin_headers(message.topic, message.partition, message.offset)
        await self.dead_letter_bytes(message.key, message.value, rejected, where, origin)

    async def dead_letter_bytes(
        self,
        key: bytes | None,
        value: bytes | None,
        rejected: Rejected,
        where: str,
        origin: dict[str, bytes] | None = None,
    ) -> None:
        """Dead-letter input that came from ``where`` (a topic position, a WebSocket) and log it.

        The copy always fits the topic (:func:`~chronox_stream.contracts.dead_letters.fitted`); a
        world failure while sending it is retried, so the caller may move on once this
        returns.
        """
        letter = fitted(key, value, rejected, origin or {})

        async def send() -> None:
            sent = await self.topics.dlq.send(key=letter.key, value=letter.value,
                                              headers=letter.headers)  # fmt: skip
            await sent

        await until_world_recovers("dead-letter send", send)
        topic = (origin or {}).get("chronox-source-topic")
        metrics.dead_lettered(rejected.reason, topic.decode() if topic else None)
        log.warning("rejected message from %s: %s", where, letter.message,
                    extra={"reason": rejected.reason})  # fmt: skip

    async def report(self, status: StatusEvent) -> None:
        await self.topics.status.send(key=status.request_id.encode(), value=status.to_json())

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.days.close()
        if self._http is not None:
            await self._http.close()
        if self._postgres is not None:
            await self._postgres.close()
        if self._redis is not None:
            await self._redis.close()


def build_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=kafka.faust_broker(settings),
        broker_credentials=kafka.faust_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        table_standby_replicas=settings.table_standby_replicas,
        broker_session_timeout=settings.faust_session_timeout_s,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host="127.0.0.1",
        **{f"producer_{name}": value for name, value in kafka.PRODUCER_TUNING.items()},
        autodiscover=False,
    )
    # Before any page is added: Faust's own pages (router, tables, index, statistics) stay off.
    app.web = OwnPagesWeb(app)
    faust_consumer.install(app)
    return app


def build_runtime(settings: Settings) -> Runtime:
    """The app with its topics and tables, ready for the agents to attach to; the extra
    sources of ``CHRONOX_SOURCE_MODULES`` are declared first."""
    import_source_modules(settings.source_modules)
    app = build_app(settings)
    names = TopicNames.for_settings(settings)
    n = settings.topic_partitions
    topics = Topics(
        control=raw_topic(app, settings, names.control),
        registry=raw_topic(app, settings, names.registry),
        work=raw_topic(app, settings, names.work),
        status=raw_topic(app, settings, names.status),
        dlq=raw_topic(app, settings, names.dlq),
        bars={tf: raw_topic(app, settings, name) for tf, name in names.bars.items()},
        ticks_raw=raw_topic(app, settings, names.ticks_raw),
        ticks_bars=raw_topic(app, settings, names.ticks_bars),
    )
    changelog = durability(settings)
    tables = Tables(
        registry=RegistryTable(app, partitions=n, topic_config=changelog),
        dedup=DedupTable(app, partitions=n, topic_config=changelog,
                         horizon_ms=int(settings.state_horizon_days * 86_400_000)),  # fmt: skip
        backfill_state=BackfillStateTable(app, partitions=n, topic_config=changelog),
    )
    runtime = Runtime(settings=settings, app=app, topics=topics, tables=tables)

    async def open_flat_files() -> None:
        # Making the S3 client (its TLS contexts, read from disk in a thread) costs a few
        # hundred ms: paid at start rather than by the first backfill. A failure here is
        # only logged: the first flatpack phase meets (and reports) it again.
        try:
            await runtime.runner().days.open()
        except Exception as exc:
            log.warning("flat-file store not opened at start: %s", exc)

    if settings.preload_backfill:
        app.task(open_flat_files)

    @app.on_before_shutdown.connect
    async def _close_resources(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await runtime.close()

    return runtime
