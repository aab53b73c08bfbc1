"""Producing backfill requests to the control topic (what ``chronox ingest`` does)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from chronox_stream.runtime import kafka
from chronox_stream.runtime.names import TopicNames
from chronox_stream.runtime.topics import ensure_topics
from chronox_stream.settings import Settings


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex[:12]}"


async def send_request(settings: Settings, request: dict[str, Any]) -> None:
    """Produce one request document (validated by the worker, not here), keyed by request_id."""
    await ensure_topics(settings)
    producer = kafka.producer(settings, client_id=f"{settings.app_id}-cli")
    await producer.start()
    try:
        await producer.send_and_wait(
            TopicNames.for_settings(settings).control,
            key=str(request["request_id"]).encode(),
            value=orjson.dumps(request),
        )
    finally:
        await producer.stop()
