"""The Faust internals the worker relies on exist in the installed Faust, or a worker refuses."""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaProducer
from faust.exceptions import NotReady

from chronox_stream.runtime import faust_shims
from chronox_stream.runtime.app import build_app
from chronox_stream.settings import Settings


def test_every_internal_the_shims_rely_on_exists_in_the_installed_faust() -> None:
    assert faust_shims.missing() == []
    faust_shims.check()


def test_a_faust_without_one_of_them_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = (*faust_shims.INTERNALS, (faust_shims.Web, "_renamed_in_a_later_release"))
    monkeypatch.setattr(faust_shims, "INTERNALS", gone)
    with pytest.raises(RuntimeError, match="Web._renamed_in_a_later_release"):
        faust_shims.check()


def test_an_unchecked_faust_version_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(faust_shims, "version", lambda name: "0.99.0")
    with caplog.at_level(logging.WARNING, logger=faust_shims.__name__):
        faust_shims.check()
    assert "faust-streaming 0.99.0 has not been checked" in caplog.text


async def test_the_aiokafka_producer_is_faust_s_own_partitioned_as_its_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_broker(self: AIOKafkaProducer) -> None:
        return None

    monkeypatch.setattr(AIOKafkaProducer, "start", no_broker)
    producer = build_app(Settings(app_id="shims-test")).producer
    with pytest.raises(NotReady):
        faust_shims.kafka_producer(producer)  # not started yet: nothing to send through
    await producer.on_start()
    aiokafka_producer = faust_shims.kafka_producer(producer)
    try:
        assert isinstance(aiokafka_producer, AIOKafkaProducer)
        # the emitter partitions its batches with producer.partitioner: the same function
        assert aiokafka_producer._partitioner is producer.partitioner
    finally:
        await aiokafka_producer.stop()


def test_a_producer_of_another_transport_is_refused() -> None:
    with pytest.raises(TypeError, match="not Faust's aiokafka producer"):
        faust_shims.kafka_producer(object())  # type: ignore[arg-type]
