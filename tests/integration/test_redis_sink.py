"""The Redis mirror against a real Redis: every envelope published in order, the latest bar
only ever moving forward."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from chronox_stream.contracts.envelope import envelope
from chronox_stream.domain.bars import Bar
from chronox_stream.settings import Settings
from chronox_stream.sinks.redis import CHUNK, RedisSink
from tests.integration.helpers import pubsub_messages

pytestmark = pytest.mark.integration

START = datetime(2024, 1, 16, 14, 30, tzinfo=UTC)


def minute_bar(symbol: str, minute: int) -> tuple[Bar, bytes]:
    bar = Bar(symbol=symbol, tf="1m", ts=START + timedelta(minutes=minute),
              open=10, high=11, low=9, close=10 + minute / 100, volume=100)  # fmt: skip
    return bar, envelope(bar, "api")


@pytest.fixture
async def sink(stack: Settings) -> AsyncIterator[RedisSink]:
    redis_sink = RedisSink.connect(
        stack.redis_url.get_secret_value(),
        prefix=f"t{uuid.uuid4().hex[:8]}:",
        timeout_s=stack.redis_timeout_s,
    )
    yield redis_sink
    await redis_sink.close()


async def latest_ts(sink: RedisSink, prefix: str, symbol: str) -> str:
    raw = await sink.client.get(f"{prefix}bars:latest:{symbol}:1m")
    return str(orjson.loads(raw)["ts"])


async def test_every_envelope_is_published_in_order_across_chunks(sink: RedisSink) -> None:
    prefix = sink.prefix
    pubsub = sink.client.pubsub()
    await pubsub.subscribe(f"{prefix}bars:AAPL:1m", f"{prefix}bars:MSFT:1m")
    bars = [minute_bar(symbol, m) for m in range(CHUNK + 200) for symbol in ("AAPL", "MSFT")]
    await sink.publish(bars)
    received = await pubsub_messages(pubsub, len(bars), timeout_s=30)
    assert received == [payload for _, payload in bars]
    assert await latest_ts(sink, prefix, "MSFT") == "2024-01-17T10:29:00Z"
    await pubsub.aclose()


async def test_the_latest_bar_never_moves_back(sink: RedisSink) -> None:
    prefix = sink.prefix
    await sink.publish([minute_bar("AAPL", 30), minute_bar("AAPL", 10)])
    assert await latest_ts(sink, prefix, "AAPL") == "2024-01-16T15:00:00Z"
    await sink.publish([minute_bar("AAPL", 5)])
    assert await latest_ts(sink, prefix, "AAPL") == "2024-01-16T15:00:00Z"
    await sink.publish([minute_bar("AAPL", 31)])
    assert await latest_ts(sink, prefix, "AAPL") == "2024-01-16T15:01:00Z"


async def test_runs_of_one_symbol_are_published_in_order_and_the_last_equal_bar_is_latest(
    sink: RedisSink,
) -> None:
    prefix = sink.prefix
    pubsub = sink.client.pubsub()
    await pubsub.subscribe(f"{prefix}bars:AAPL:1m", f"{prefix}bars:MSFT:1m")
    revised_bar, _ = minute_bar("AAPL", 2)
    revised = (revised_bar, envelope(revised_bar, "flatpack"))
    bars = [*(minute_bar("AAPL", m) for m in range(3)), *(minute_bar("MSFT", m) for m in range(2)),
            minute_bar("AAPL", 1), revised]  # fmt: skip
    await sink.publish(bars)
    received = await pubsub_messages(pubsub, len(bars), timeout_s=30)
    assert received == [payload for _, payload in bars]
    assert await sink.client.get(f"{prefix}bars:latest:AAPL:1m") == revised[1]
    assert await latest_ts(sink, prefix, "MSFT") == "2024-01-16T14:31:00Z"
    await pubsub.aclose()
