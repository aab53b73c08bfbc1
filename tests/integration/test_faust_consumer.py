"""Seeking back after a rebalance: a partition never committed is read again from its start.

Faust drops what it fetched while a rebalance held its flow and seeks back to
the committed offsets; our consumer also seeks a partition without a commit,
which Faust would leave past the records it dropped.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from chronox_stream.runtime.app import build_app
from chronox_stream.runtime.faust_consumer import RereadingConsumer, seek_to_committed_or_reset
from chronox_stream.settings import Settings

pytestmark = pytest.mark.integration

RECORDS = 10


async def read_all(consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
    seen = 0
    while seen < RECORDS:
        seen += len((await consumer.getmany(tp, timeout_ms=1000)).get(tp, []))


async def test_a_partition_never_committed_is_sought_to_its_start(settings: Settings) -> None:
    topic = settings.topic("reread")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for n in range(RECORDS):
            await producer.send_and_wait(topic, str(n).encode())
    finally:
        await producer.stop()
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                group_id=f"{settings.app_id}-reread", enable_auto_commit=False,
                                auto_offset_reset="earliest")  # fmt: skip
    consumer.subscribe([topic])
    await consumer.start()
    try:
        await read_all(consumer, tp)
        assert await consumer.position(tp) == RECORDS
        assert await seek_to_committed_or_reset(consumer, "earliest") == {tp: None}
        assert await consumer.position(tp) == 0, "never committed: read again from the start"
        await read_all(consumer, tp)
        await consumer.commit({tp: OffsetAndMetadata(4, "")})
        assert await seek_to_committed_or_reset(consumer, "earliest") == {tp: 4}
        assert await consumer.position(tp) == 4, "committed: read again from the commit"
    finally:
        await consumer.stop()


def test_the_worker_app_uses_the_rereading_consumer(settings: Settings) -> None:
    assert build_app(settings).transport.Consumer is RereadingConsumer
