"""Every Faust internal the worker relies on, in one place, checked against the installed Faust.

faust-streaming gives no public way to do a few things the worker needs, so it
uses these internals (faust-streaming and its ``mode-streaming`` base):

- ``faust.streams._current_event``: the context variable from which a table
  write picks its changelog partition. A batched agent sets it per partition
  group (:func:`current_event`, used by ``tables/partition.py``).
- ``AIOKafkaConsumerThread._ensure_consumer``: the aiokafka consumer behind
  Faust's, which ``runtime/faust_consumer.py`` seeks itself (:func:`kafka_consumer`).
- ``Producer._ensure_producer``: the aiokafka producer behind Faust's, whose batch API
  (``create_batch`` / ``send_batch``) the emitter uses (:func:`kafka_producer`); Faust's
  producer offers only one send per record.
- ``Consumer._new_consumer_thread``: overridden in ``runtime/faust_consumer.py``
  to make that consumer thread, and ``Transport.Consumer``, the class a
  transport instantiates.
- ``Web.default_blueprints`` and its ``production_``, ``debug_`` and
  ``optional_`` siblings: the built-in pages ``runtime/web_server.py`` empties.
- ``Worker._on_sigint`` / ``Worker._on_sigterm``: the stop-signal handlers
  ``runtime/worker.py`` wraps to bound shutdown.
- ``Recovery.completed``: the event set once the tables are recovered, which
  ``/ready`` reports (:func:`tables_recovered`); the typed ``TableManagerT``
  does not declare its ``recovery``.

An upgrade can rename any of them without notice, so :func:`missing` lists the
ones the installed Faust lacks (a unit test asserts there are none, so an
upgrade fails a test, not production) and :func:`check`, called when a worker
starts, refuses to run with any missing and warns on a faust-streaming version
they were not checked against (:data:`CHECKED_VERSIONS`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

import faust
import faust.streams
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import (
    AIOKafkaConsumerThread,
    Consumer,
    Producer,
    Transport,
)
from faust.types import EventT, ProducerT
from faust.web.drivers.aiohttp import Web

log = logging.getLogger(__name__)

#: faust-streaming releases these internals were read in and tested with.
CHECKED_VERSIONS = frozenset({"0.15.3"})

#: (owner, attribute): every internal named in the module's docstring.
INTERNALS: tuple[tuple[Any, str], ...] = (
    (faust.streams, "_current_event"),
    (AIOKafkaConsumerThread, "_ensure_consumer"),
    (Producer, "_ensure_producer"),
    (Consumer, "_new_consumer_thread"),
    (Transport, "Consumer"),
    (Web, "default_blueprints"),
    (Web, "production_blueprints"),
    (Web, "debug_blueprints"),
    (Web, "optional_blueprints"),
    (faust.Worker, "_on_sigint"),
    (faust.Worker, "_on_sigterm"),
)
#: Attributes set per instance, found in the class's annotations instead.
INSTANCE_INTERNALS: tuple[tuple[type, str], ...] = ((Recovery, "completed"),)


def missing() -> list[str]:
    """The internals the installed Faust lacks, as ``owner.attribute`` (none: all there)."""
    absent = [
        f"{getattr(owner, '__name__', owner)}.{name}"
        for owner, name in INTERNALS
        if not hasattr(owner, name)
    ]
    absent += [
        f"{owner.__name__}.{name}"
        for owner, name in INSTANCE_INTERNALS
        if name not in getattr(owner, "__annotations__", {})
    ]
    return absent


def check() -> None:
    """Refuse (``RuntimeError``) a Faust without every internal; warn on an unchecked version."""
    installed = version("faust-streaming")
    absent = missing()
    if absent:
        raise RuntimeError(
            f"faust-streaming {installed} lacks what chronox-stream relies on: "
            f"{', '.join(absent)} (checked with {', '.join(sorted(CHECKED_VERSIONS))}); "
            "install a checked version"
        )
    if installed not in CHECKED_VERSIONS:
        log.warning("faust-streaming %s has not been checked with chronox-stream (checked: %s); "
                    "its internals are present, but their behaviour may differ",
                    installed, ", ".join(sorted(CHECKED_VERSIONS)))  # fmt: skip


@contextmanager
def current_event(event: EventT[Any]) -> Iterator[None]:
    """Within the block, table writes go to ``event``'s partition, as if Faust's stream
    were processing it."""
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


def kafka_consumer(thread: AIOKafkaConsumerThread) -> AIOKafkaConsumer:
    """The aiokafka consumer a Faust consumer thread drives (made on first use)."""
    consumer: AIOKafkaConsumer = thread._ensure_consumer()
    return consumer


def kafka_producer(producer: ProducerT) -> AIOKafkaProducer:
    """The started aiokafka producer behind the app's Faust producer (``app.producer``)."""
    if not isinstance(producer, Producer):
        raise TypeError(f"not Faust's aiokafka producer: {type(producer).__name__}")
    aiokafka_producer: AIOKafkaProducer = producer._ensure_producer()
    return aiokafka_producer


def tables_recovered(app: faust.App) -> bool:
    """Whether the app's tables finished recovering from their changelogs."""
    manager: Any = app.tables
    recovery: Recovery = manager.recovery
    return recovery.completed.is_set()
