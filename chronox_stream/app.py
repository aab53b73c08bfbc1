"""The Faust application and the runtime its agents share.

``build_runtime`` creates one Faust app for one settings object, declares the
topics, and attaches the agents from ``agents/``. I/O resources (HTTP session,
PostgreSQL pool, Redis client) are opened on first use inside the worker's
event loop and closed when the app shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import faust
from faust.types import EventT, TopicT

from chronox_stream.rejects import Rejected
from chronox_stream.settings import Settings
from chronox_stream.sinks.postgres import PostgresSink
from chronox_stream.sinks.redis import RedisSink
from chronox_stream.sources.polygon_rest import PolygonRest
from chronox_stream.status import StatusEvent
from chronox_stream.topics import TopicNames

log = logging.getLogger(__name__)

REASON_HEADER = "chronox-reason"
MESSAGE_HEADER = "chronox-message"


def utcnow() -> datetime:
    return datetime.now(UTC)


def raw_topic(app: faust.App, name: str, partitions: int) -> TopicT:
    """A topic of raw bytes: we decode ourselves so a bad message can be dead-lettered."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


@dataclass
class Topics:
    control: TopicT
    work: TopicT
    status: TopicT
    dlq: TopicT
    bars: dict[str, TopicT]
    all_bars: TopicT


@dataclass
class Runtime:
    """What every agent needs: settings, the app, its topics, and shared I/O clients."""

    settings: Settings
    app: faust.App
    topics: Topics
    _http: aiohttp.ClientSession | None = None
    _postgres: PostgresSink | None = None
    _redis: RedisSink | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def rest(self) -> PolygonRest:
        if self._http is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.http_timeout_s)
            self._http = aiohttp.ClientSession(timeout=timeout)
        return PolygonRest(
            self._http,
            base_url=self.settings.polygon_rest_url,
            api_key=self.settings.polygon_api_key,
        )

    async def postgres(self) -> PostgresSink:
        async with self._lock:
            if self._postgres is None:
                sink = await PostgresSink.connect(
                    self.settings.postgres_dsn.get_secret_value(),
                    schema=self.settings.postgres_schema,
                )
                await sink.migrate()
                self._postgres = sink
        return self._postgres

    def redis(self) -> RedisSink:
        if self._redis is None:
            self._redis = RedisSink.connect(
                self.settings.redis_url.get_secret_value(), prefix=self.settings.redis_prefix
            )
        return self._redis

    async def dead_letter(self, event: EventT[Any], rejected: Rejected) -> None:
        """Forward the original bytes to the DLQ with the reason in headers; log it."""
        message = event.message
        headers: dict[str, Any] = {
            REASON_HEADER: rejected.reason.encode(),
            MESSAGE_HEADER: rejected.message.encode(),
            "chronox-source-topic": message.topic.encode(),
            "chronox-source-partition": str(message.partition).encode(),
            "chronox-source-offset": str(message.offset).encode(),
        }
        await self.topics.dlq.send(key=event.key, value=event.value, headers=headers)
        log.warning(
            "rejected message from %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            rejected.message,
            extra={"reason": rejected.reason},
        )

    async def report(self, status: StatusEvent) -> None:
        await self.topics.status.send(key=status.request_id.encode(), value=status.to_json())

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._postgres is not None:
            await self._postgres.close()
        if self._redis is not None:
            await self._redis.close()


def build_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        table_standby_replicas=settings.table_standby_replicas,
        processing_guarantee=settings.processing_guarantee,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_host="127.0.0.1",
        autodiscover=False,
    )


def build_runtime(settings: Settings) -> Runtime:
    """The app with its topics and agents attached, ready for a ``faust.Worker``."""
    from agents import api_phase, control, sink

    app = build_app(settings)
    names = TopicNames.for_settings(settings)
    n = settings.topic_partitions
    topics = Topics(
        control=raw_topic(app, names.control, n),
        work=raw_topic(app, names.work, n),
        status=raw_topic(app, names.status, n),
        dlq=raw_topic(app, names.dlq, n),
        bars={tf: raw_topic(app, name, n) for tf, name in names.bars.items()},
        all_bars=app.topic(
            *names.bars.values(),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        ),
    )
    runtime = Runtime(settings=settings, app=app, topics=topics)
    for module in (control, api_phase, sink):
        module.attach(runtime)

    @app.on_before_shutdown.connect
    async def _close_resources(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await runtime.close()

    return runtime
