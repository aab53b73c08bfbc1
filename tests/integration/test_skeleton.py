"""The walking skeleton on the real stack: control -> REST -> bar topic -> PostgreSQL, Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from chronox_stream.contracts.envelope import envelope
from chronox_stream.domain.bars import Bar
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import (
    consume,
    fetch_rows,
    poll,
    pubsub_messages,
    rest_aggregates,
)

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT"]
START, END = "2024-01-16", "2024-01-17"


async def _send(producer: AIOKafkaProducer, settings: Settings, key: bytes, value: bytes) -> None:
    await producer.send_and_wait(settings.topic("control"), key=key, value=value)


async def test_backfill_lands_in_postgres_row_for_row(
    settings: Settings, sim: object, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    expected = {
        symbol: await rest_aggregates(
            sim.rest_url,  # type: ignore[attr-defined]
            sim.api_key,  # type: ignore[attr-defined]
            symbol,
            f"1/minute/{START}/{END}",  # New York dates, as the request's
        )
        for symbol in SYMBOLS
    }
    total = sum(len(rows) for rows in expected.values())
    assert total > 500, "the seeded days should hold full sessions of minute bars"

    redis = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    pubsub = redis.pubsub()
    await pubsub.psubscribe(f"{settings.redis_prefix}bars:*")
    start_worker()
    request = {"request_id": "skeleton-1", "symbols": SYMBOLS, "strategy": "api",
               "start": START, "end": END}  # fmt: skip
    await _send(producer, settings, b"skeleton-1", orjson.dumps(request))

    async def landed() -> bool:
        rows = await fetch_rows(settings, "SELECT count(*) AS n FROM {schema}.bars")
        return bool(rows) and rows[0]["n"] >= total

    assert await poll(landed, timeout_s=120), "bars did not reach PostgreSQL"
    rows = await fetch_rows(
        settings,
        "SELECT symbol, tf, ts, open, high, low, close, volume, vwap, transactions, source, "
        "revision FROM {schema}.bars ORDER BY symbol, ts",
    )
    got = {
        (r["symbol"], int(r["ts"].timestamp() * 1000)):
        (r["open"], r["high"], r["low"], r["close"], r["volume"], r["vwap"], r["transactions"])
        for r in rows
    }  # fmt: skip
    want = {
        (symbol, b["t"]): (b["o"], b["h"], b["l"], b["c"], b["v"], b["vw"], b["n"])
        for symbol, bars in expected.items()
        for b in bars
    }
    assert got == want
    assert {r["source"] for r in rows} == {"api"}
    assert {r["tf"] for r in rows} == {"1m"}
    assert {r["revision"] for r in rows} == {1}

    messages = await pubsub_messages(pubsub, total)
    assert len(messages) == total
    last = expected["MSFT"][-1]
    latest = orjson.loads(await redis.get(f"{settings.redis_prefix}bars:latest:MSFT:1m"))
    assert latest["ohlcv"]["close"] == last["c"]
    assert latest["dedup_key"] == "MSFT|1m|" + datetime.fromtimestamp(
        last["t"] / 1000, UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    await pubsub.aclose()
    await redis.aclose()


async def test_malformed_control_messages_go_to_the_dlq_and_the_worker_keeps_running(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    worker = start_worker()
    bad = {
        b"bad-json": b"{not json",
        b"bad-field": orjson.dumps({"request_id": "x1", "symbols": ["AAPL"], "colour": "red"}),
        b"bad-symbol": orjson.dumps({"request_id": "x2", "symbols": ["AA PL"]}),
        b"bad-tf": orjson.dumps({"request_id": "x3", "symbols": ["AAPL"], "timeframe": "2m"}),
        b"bad-range": orjson.dumps(
            {"request_id": "x4", "symbols": ["AAPL"], "start": "2024-01-10", "end": "2024-01-02"}
        ),
        b"future": orjson.dumps({"request_id": "x5", "symbols": ["AAPL"], "start": "2999-01-01"}),
        b"bad-type": orjson.dumps({"request_id": "x6", "symbols": ["AAPL"], "dry_run": "yes"}),
        b"not-object": b"[1, 2, 3]",
    }
    for key, value in bad.items():
        await _send(producer, settings, key, value)
    good = {"request_id": "after-bad", "symbols": ["AAPL"], "strategy": "api",
            "start": END, "end": END}  # fmt: skip
    await _send(producer, settings, b"after-bad", orjson.dumps(good))

    dead = await consume(settings, settings.topic("dlq"), until=lambda r: len(r) >= len(bad))
    reasons = {
        r.key: dict(r.headers)["chronox-reason"].decode()
        for r in dead  # type: ignore[attr-defined]
    }
    assert reasons == {
        b"bad-json": "invalid_json",
        b"bad-field": "unknown_field",
        b"bad-symbol": "invalid_symbol",
        b"bad-tf": "invalid_timeframe",
        b"bad-range": "invalid_range",
        b"future": "invalid_range",
        b"bad-type": "invalid_type",
        b"not-object": "not_an_object",
    }
    assert {r.key: r.value for r in dead} == bad  # type: ignore[attr-defined]
    assert all(dict(r.headers)["chronox-message"] for r in dead)  # type: ignore[attr-defined]

    statuses = await consume(
        settings,
        settings.topic("status"),
        until=lambda recs: any(orjson.loads(r.value)["state"] == "done" for r in recs),  # type: ignore[attr-defined]
    )
    done = [orjson.loads(r.value) for r in statuses]  # type: ignore[attr-defined]
    assert any(
        s["request_id"] == "after-bad" and s["state"] == "done" and s["count"] > 0 for s in done
    )
    assert worker.process.poll() is None
    key = settings.polygon_api_key.get_secret_value()
    assert key and key not in worker.log_path.read_text(), "the API key leaked into the log"


async def test_what_is_not_an_envelope_on_a_bar_topic_goes_to_the_dlq(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """Any producer may write to the bar topics: the sink dead-letters what it cannot read
    and still writes the envelopes around it."""
    worker = start_worker()
    bar = Bar(symbol="ZZZ", tf="1m", ts=datetime(2024, 1, 16, 15, 0, tzinfo=UTC),
              open=10.0, high=11.0, low=9.5, close=10.5, volume=1200.0)  # fmt: skip
    good = envelope(bar, "api")
    wrong_key = orjson.loads(good) | {"dedup_key": "ZZZ|1m|2024-01-16T15:01:00Z"}
    bad = [b"{not json", orjson.dumps(wrong_key), orjson.dumps({"version": "v2"})]
    topic = settings.topic("bars.1m")
    for value in [bad[0], good, *bad[1:]]:
        await producer.send_and_wait(topic, key=b"ZZZ", value=value)

    dead = await consume(settings, settings.topic("dlq"), until=lambda r: len(r) >= len(bad))
    assert sorted(r.value for r in dead) == sorted(bad)
    assert {dict(r.headers)["chronox-reason"] for r in dead} == {b"invalid_envelope"}
    assert {dict(r.headers)["chronox-source-topic"] for r in dead} == {topic.encode()}

    async def landed() -> list[Any]:
        return await fetch_rows(settings, "SELECT * FROM {schema}.bars WHERE symbol = 'ZZZ'")

    rows = await poll(landed, timeout_s=60)
    assert [(r["ts"], r["close"], r["source"]) for r in rows] == [(bar.ts, 10.5, "api")]
    assert worker.process.poll() is None
