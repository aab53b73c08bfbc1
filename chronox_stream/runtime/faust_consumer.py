"""Faust's Kafka consumer, with partitions that were never committed read again after a rebalance.

faust-streaming drops the records it fetched while a rebalance held its flow (or
after the group's generation changed) and relies on seeking every partition back
to its committed offset to read them again. A partition with no committed offset
(its first owner died before committing anything) is not sought at all, so what
was dropped is skipped for good: after a worker's SIGKILL, every stream bar of one
symbol stayed on ``ticks.bars`` while the new owner's position sat at the end.

Here such a partition is sought to where the consumer's reset policy starts a
partition without a commit (the beginning, for ``earliest``). Reading it again
is safe: everything downstream is deduplicated and idempotent.

Two of Faust's internals are used here (see :mod:`chronox_stream.runtime.faust_shims`):
the consumer thread's aiokafka consumer and the factory method that makes the thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport

from chronox_stream.runtime.faust_shims import kafka_consumer


async def seek_to_committed_or_reset(
    consumer: AIOKafkaConsumer, reset: str
) -> Mapping[TopicPartition, int | None]:
    """Seek each assigned partition to its committed offset; one never committed (or
    committed at 0) to the start ``reset`` names. Returns the committed offsets."""
    committed: Mapping[TopicPartition, int | None] = await consumer.seek_to_committed()
    never = [tp for tp, offset in committed.items() if not offset]
    if never and reset == "earliest":
        await consumer.seek_to_beginning(*never)
    elif never and reset == "latest":
        await consumer.seek_to_end(*never)
    return committed


class RereadingConsumerThread(AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[Any, int]:
        reset = self.app.conf.consumer_auto_offset_reset
        consumer = kafka_consumer(self)
        committed: Mapping[Any, int] = await self.call_thread(
            seek_to_committed_or_reset, consumer, reset
        )
        return committed


class RereadingConsumer(Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return RereadingConsumerThread(self, loop=self.loop, beacon=self.beacon)


class RereadingTransport(Transport):
    Consumer = RereadingConsumer


def install(app: faust.App) -> None:
    """Give ``app`` (a ``kafka://`` app) the transport that makes a :class:`RereadingConsumer`."""
    app.transport = RereadingTransport(app.conf.broker_consumer, app)
