"""One poison record never stops a partition: in every consumer of a worker it is
dead-lettered with a reason, and the records behind it on the same partition are processed.

Each input topic gets records that used to crash, stall or silently vanish (a null id, a
date out of the calendar's range, a value too large to echo, numbers beyond int64 or
infinity, symbols PostgreSQL refuses), then good records under the same key, so they queue
behind the poison on one partition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.client.registry import read_entries
from chronox_stream.contracts import envelope as wire
from chronox_stream.contracts.dead_letters import MAX_VALUE, VALUE_OMITTED_HEADER
from chronox_stream.contracts.ticks import Tick
from chronox_stream.domain.bars import Bar
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, fetch_rows, poll

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MINUTE = datetime(2024, 1, 16, 15, 0, tzinfo=UTC)
MINUTE_MS = int(MINUTE.timestamp() * 1000)


def envelope(symbol: str, tf: str = "1m", source: str = "api", **changes: Any) -> bytes:
    bar = Bar(symbol="ZZZ", tf="1m", ts=MINUTE, open=10.0, high=11.0, low=9.5, close=10.5,
              volume=1200.0, transactions=12)  # fmt: skip
    doc = orjson.loads(wire.envelope(bar, "api"))
    doc |= {"symbol": symbol, "tf": tf, "source": source,
            "dedup_key": f"{symbol}|{tf}|{doc['ts']}"}  # fmt: skip
    for name, value in changes.items():
        doc["features" if name == "transactions" else "ohlcv"][name] = value
    return orjson.dumps(doc)


def tick(ts: int, price: float, size: int, sequence: int) -> bytes:
    return Tick("NVDA", ts, price, size, (), 4, f"t{sequence}", sequence).to_json()


async def test_poison_in_every_consumer_is_dead_lettered_and_what_follows_is_processed(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    worker = start_worker(tick_timeframes="1m")
    t = settings.topic
    poison: list[tuple[str, bytes, bytes]] = [
        (t("control"), b"req", orjson.dumps({"request_id": None, "symbols": ["AAPL"]})),
        (t("control"), b"req", orjson.dumps(
            {"request_id": "r-0001", "symbols": ["AAPL"], "start": "0001-01-01T00:00:00+01:00"})),
        (t("control"), b"req", orjson.dumps(
            {"request_id": "r-big", "symbols": ["AAPL"], "colour": "x" * (MAX_VALUE + 10)})),
        (t("registry"), b"AAPL", orjson.dumps({"op": "add", "symbol": "AAPL", "enabled": "no"})),
        (t("registry"), b"AAPL", orjson.dumps({"op": "add", "symbol": "AAPL\n"})),
        (t("work"), b"AAPL", b'{"symbol": "AAPL", "phases": 5}'),
        (t("ticks.raw"), b"NVDA", tick(MINUTE_MS + 1, 1e308, 100, 1)),
        (t("ticks.raw"), b"NVDA", tick(MINUTE_MS + 2, 10.0, 2**63, 2)),
        (t("bars.1m"), b"ZZZ", envelope("ZZ\x00Z")),
        (t("bars.1m"), b"ZZZ", envelope("Z" * 3000)),
        (t("bars.1m"), b"ZZZ", envelope("ZZZ", transactions=2**63)),
        (t("ticks.bars"), b"ZZZ", envelope("ZZZ", tf="2m", source="stream")),
    ]  # fmt: skip
    for topic, key, value in poison:
        await producer.send_and_wait(topic, key=key, value=value)

    good_ticks = [tick(MINUTE_MS + 1000, 10.0, 100, 3), tick(MINUTE_MS + 2000, 12.0, 50, 4),
                  tick(MINUTE_MS + 3000, 9.0, 10, 5), tick(MINUTE_MS + 180_000, 11.0, 5, 6)]
    for value in good_ticks:
        await producer.send_and_wait(t("ticks.raw"), key=b"NVDA", value=value)
    await producer.send_and_wait(t("bars.1m"), key=b"ZZZ", value=envelope("ZZZ"))
    later = envelope("ZZZ", source="stream").replace(b"15:00:00Z", b"15:05:00Z")
    await producer.send_and_wait(t("ticks.bars"), key=b"ZZZ", value=later)
    await producer.send_and_wait(t("registry"), key=b"AAPL", value=orjson.dumps(
        {"op": "add", "symbol": "AAPL", "strategy": "api", "enabled": False}))  # fmt: skip
    await producer.send_and_wait(t("control"), key=b"req", value=orjson.dumps(
        {"request_id": "after-poison", "symbols": ["AAPL"], "strategy": "api",
         "start": "2024-01-16T15:00:00Z", "end": "2024-01-16T15:10:00Z"}))  # fmt: skip

    dead = await consume(settings, t("dlq"), until=lambda r: len(r) >= len(poison), timeout_s=120)
    letters = {(dict(r.headers)["chronox-source-topic"].decode(), r.value) for r in dead}
    for topic, _, value in poison:
        echoed = None if len(value) > MAX_VALUE else value
        assert (topic, echoed) in letters, f"not dead-lettered from {topic}: {value[:80]!r}"
    assert len(dead) == len(poison), "each poison record is dead-lettered once"
    assert all(dict(r.headers)["chronox-reason"] for r in dead)
    (big,) = [r for r in dead if r.value is None]
    assert int(dict(big.headers)[VALUE_OMITTED_HEADER]) > MAX_VALUE
    assert int(dict(big.headers)["chronox-source-offset"]) >= 0, "a pointer to the original"

    async def stored() -> Any:
        rows = await fetch_rows(settings, "SELECT symbol, ts, open, high, low, close, volume, "
                                "source FROM {schema}.bars WHERE tf = '1m'")  # fmt: skip
        got = {(r["symbol"], r["ts"]): r for r in rows}
        wanted = [("ZZZ", MINUTE), ("ZZZ", MINUTE.replace(minute=5)), ("NVDA", MINUTE)]
        return got if all(key in got for key in wanted) else None

    rows = await poll(stored, timeout_s=120)
    assert rows, "the records behind the poison did not land"
    nvda = rows[("NVDA", MINUTE)]
    folded = tuple(nvda[k] for k in ("open", "high", "low", "close", "volume", "source"))
    assert folded == (10.0, 12.0, 9.0, 9.0, 160, "stream"), "the good ticks' minute, alone"
    assert rows[("ZZZ", MINUTE.replace(minute=5))]["source"] == "stream"

    async def registered() -> Any:
        entries = {e.symbol: e for e in await read_entries(settings)}
        entry = entries.get("AAPL")
        return entry if entry is not None and entry.enabled is False else None

    assert await poll(registered, timeout_s=60), "the registry command behind the poison"

    async def finished() -> bool:
        records = await consume(settings, t("status"), until=lambda r: False, timeout_s=2)
        events = [orjson.loads(r.value) for r in records]
        return any(e["request_id"] == "after-poison" and e["state"] == "finished" for e in events)

    assert await poll(finished, timeout_s=120), "the request behind the poison did not run"
    assert worker.process.poll() is None
