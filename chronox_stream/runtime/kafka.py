"""Every Kafka client of chronox-stream is built here: producers, consumers, admin clients.

One place holds how the process reaches the brokers (:func:`connection`: bootstrap servers,
security protocol, TLS context, SASL credentials), so a setting of the connection is written
once and reaches every client: the workers' aiokafka producers and batch consumers, the
command-line clients, and the Faust app (:func:`faust_broker`, :func:`faust_credentials` and
:data:`PRODUCER_TUNING`, read by ``runtime/app.py``). A unit test keeps every other module
from building a client.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from chronox_stream.runtime.names import group_id
from chronox_stream.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

#: Producer batching shared by every producer, Faust's included. Backfills send bursts of
#: small envelopes to one partition per symbol: the default 16 KiB batches (about 60
#: envelopes) would cap them at one round trip per batch.
PRODUCER_TUNING: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 1024 * 1024}


def connection(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client takes to reach the brokers: the bootstrap
    servers and the security protocol, with the TLS context (SSL, SASL_SSL) and the SASL
    mechanism and credentials (SASL_*) the protocol needs. The result holds the SASL password:
    pass it to a client, never to a log."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = password.get_secret_value() if password else None
    return kwargs


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of an SSL or SASL_SSL connection (``None`` otherwise): the brokers'
    certificates checked against ``kafka_ssl_cafile`` (the system's CAs without it), host
    names checked, and the client certificate when one is set. An encrypted key without
    ``kafka_ssl_key_password`` fails here: OpenSSL would otherwise ask for the password on
    the terminal, and a worker would hang at start."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    key_password = settings.kafka_ssl_key_password
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
        password=key_password.get_secret_value() if key_password else _no_password,
    )
    return context


def _no_password() -> str:
    return ""


def faust_broker(settings: Settings) -> str:
    """The broker URL of the Faust app, from the same connection settings."""
    return f"kafka://{settings.kafka_bootstrap}"


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The Faust app's ``broker_credentials`` for the same connection: Faust turns them into
    the aiokafka keyword arguments :func:`connection` gives every other client (``None`` for
    PLAINTEXT). Faust is imported here, not by the command-line clients that never need it."""
    from faust.auth import SASLCredentials, SSLCredentials

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return SSLCredentials(context)
    password = settings.kafka_sasl_password
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )


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
