"""Every Kafka client of chronox-stream is built here: producers, consumers, admin clients.

One place holds how the process reaches the brokers (:func:`connection`), so a setting of
the connection (bootstrap servers today; authentication and TLS when they come) is written
once and reaches every client: the workers' aiokafka producers and batch consumers, the
command-line clients, and the Faust app (:func:`faust_broker` and :data:`PRODUCER_TUNING`,
read by ``runtime/app.py``). A unit test keeps every other module from building a client.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from chronox_stream.runtime.names import group_id
from chronox_stream.settings import Settings

#: Producer batching shared by every producer, Faust's included. Backfills send bursts of
#: small envelopes to one partition per symbol: the default 16 KiB batches (about 60
#: envelopes) would cap them at one round trip per batch.
PRODUCER_TUNING: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 1024 * 1024}


def connection(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client takes to reach the brokers."""
    return {"bootstrap_servers": settings.kafka_bootstrap}


def faust_broker(settings: Settings) -> str:
    """The broker URL of the Faust app, from the same connection settings."""
    return f"kafka://{connection(settings)['bootstrap_servers']}"


def producer(settings: Settings, *, client_id: str | None = None) -> AIOKafkaProducer:
    """A producer whose sends count once Kafka has them on every in-sync replica
    (``acks=all``) and are never written twice by its own retries (idempotence)."""
    return AIOKafkaProducer(
        **connection(settings),
        client_id=client_id or f"{settings.app_id}-producer",
        acks="all",
        enable_idempotence=True,
        **PRODUCER_TUNING,
    )


def reader(settings: Settings) -> AIOKafkaConsumer:
    """A consumer outside any group that never commits: the caller assigns and seeks."""
    return AIOKafkaConsumer(**connection(settings), enable_auto_commit=False, group_id=None)


def group_consumer(settings: Settings, group: str) -> AIOKafkaConsumer:
    """A consumer of the app's ``group`` (:func:`~chronox_stream.runtime.names.group_id`)
    that commits by hand, from the earliest offset when the group has none: for the tasks
    that read Kafka outside Faust's streams. The caller subscribes it, with its rebalance
    listener. ``fetch_max_wait_ms`` stays aiokafka's 500 ms: the broker answers a waiting
    fetch as soon as a record arrives (measured: a median 7 ms from produce to consume
    with 500 ms and with 50 ms alike), so a lower one would only poll an idle topic more."""
    return AIOKafkaConsumer(
        **connection(settings),
        group_id=group_id(settings, group),
        client_id=group_id(settings, group),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def admin(settings: Settings) -> AIOKafkaAdminClient:
    """An admin client (topics, consumer group offsets); the caller starts and closes it."""
    return AIOKafkaAdminClient(**connection(settings))
