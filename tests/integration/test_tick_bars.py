"""Raw ticks on Kafka to stream bars in PostgreSQL: the exchange's own bars, once each.

The ticks are the simulator's trades of a whole session in report order (151 of
AAPL's come late, up to 15.8 minutes); see ``tick_data``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from chronox_stream.client.status import group_lag
from chronox_stream.contracts.envelope import parse_ts
from chronox_stream.contracts.ticks import Tick
from chronox_stream.domain.conditions import sets_open_close
from chronox_stream.runtime.topics import read_to_end
from chronox_stream.settings import Settings
from chronox_stream.sim.aggregate import fold
from chronox_stream.sim.market import Trade, day_columns
from tests.fixtures.sim import SIM_SEED
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, ms, poll, pubsub_messages
from tests.integration.tick_data import (
    NEXT_MIDNIGHT,
    NEXT_SESSION,
    SESSION,
    TICK_WORKER,
    as_ticks,
    expected_session_bars,
    final_minute_events,
    produce_ticks,
    reported_ticks,
    session_bars,
    settled_session_bars,
)

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "NVDA")


async def test_stream_bars_equal_the_exchanges_bars_including_late_corrections(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer, sim: Any
) -> None:
    start_worker(**TICK_WORKER)
    for day in (SESSION, NEXT_SESSION):
        await produce_ticks(producer, settings, reported_ticks(SYMBOLS, day))
    expected = await expected_session_bars(sim, SYMBOLS)
    ours = await poll(lambda: settled_session_bars(settings, len(expected)), timeout_s=180)
    ours = ours or await session_bars(settings)
    assert ours == expected, "stream bars = REST bars (1m, 5m, 1d)"
    minute_events = final_minute_events(SYMBOLS)
    assert {key: bar[:6] for key, bar in ours.items() if key[1] == "1m"} == minute_events, (
        "stream bars = the WebSocket's AM events"
    )
    records = await read_to_end(settings, settings.topic("bars.1m"))
    minutes = Counter(orjson.loads(r.value)["dedup_key"] for r in records)
    corrected = [key for key, n in minutes.items() if n > 1]
    assert corrected, "late trades arrived after their minute closed: corrections were due"
    assert len(corrected) < len(minutes) / 4, "only late trades' minutes are emitted twice"


async def test_in_progress_bars_reach_redis_only(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker(**TICK_WORKER, tick_live_ms=100, tick_idle_close_ms=0)
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{settings.redis_prefix}live:AAPL:1m")
    ticks = reported_ticks(["AAPL"], SESSION)[:30]
    try:
        await produce_ticks(producer, settings, ticks)
        payloads = await pubsub_messages(pubsub, 1, timeout_s=60)
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert payloads, "no in-progress bar was published"
    live = orjson.loads(payloads[0])
    assert live["features"]["in_progress"] is True and live["source"] == "stream"
    minutes = {datetime.fromtimestamp(t.ts // 60_000 * 60, tz=UTC) for t in ticks}
    assert parse_ts(live["ts"]) in minutes
    await asyncio.sleep(2)
    rows = await session_bars(settings)
    assert ("AAPL", "1m", max(minutes)) not in rows, "an open minute never reaches PostgreSQL"


@pytest.mark.long
@pytest.mark.timeout(480)
async def test_a_worker_killed_mid_stream_loses_and_double_counts_nothing(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer, sim: Any
) -> None:
    first = start_worker("first", **TICK_WORKER)
    ticks = reported_ticks(SYMBOLS, SESSION)
    half = len(ticks) // 2
    await produce_ticks(producer, settings, ticks[:half])

    async def some_bars() -> bool:
        return len(await session_bars(settings)) > 100

    await poll(some_bars, timeout_s=120)
    first.kill()  # SIGKILL: no flush, no commit, mid-window
    start_worker("second", **TICK_WORKER)
    await produce_ticks(producer, settings, ticks[half:])
    await produce_ticks(producer, settings, reported_ticks(SYMBOLS, NEXT_SESSION))
    expected = await expected_session_bars(sim, SYMBOLS)
    # A killed worker's partitions move on after the session timeout, and its successor
    # restores their state first: minutes on a machine whose cores every test shares.
    ours = await poll(lambda: settled_session_bars(settings, len(expected)), timeout_s=300)
    assert (ours or await session_bars(settings)) == expected
    # What a consumer of the bar topic ends with: the last envelope of each key. A crash
    # between a send and its dedup record can repeat an identical envelope (at least once).
    last: dict[tuple[str, str, datetime], tuple[Any, ...]] = {}
    for record in await read_to_end(settings, settings.topic("bars.1m")):
        doc = orjson.loads(record.value)
        ohlcv, features = doc["ohlcv"], doc["features"]
        last[(doc["symbol"], "1m", datetime.fromisoformat(doc["ts"]))] = (
            ohlcv["open"], ohlcv["high"], ohlcv["low"], ohlcv["close"], ohlcv["volume"],
            features["vwap"], features["transactions"],
        )  # fmt: skip
    minutes = {key: bar for key, bar in expected.items() if key[1] == "1m"}
    assert {key: bar for key, bar in last.items() if key[2] < NEXT_MIDNIGHT} == minutes


MINUTE_NS = 60_000_000_000


def feed_stopping_late_in_a_minute(trades: list[Trade]) -> list[Trade]:
    """The first 200 or more ``trades`` (in report order), up to one that is the latest in SIP
    time, in the last 10 s of its minute, and may set its minute's close (so the minute has
    a bar): the idle clock closes that minute in seconds."""
    latest = 0
    for n, trade in enumerate(trades, start=1):
        latest = max(latest, trade.sip_ns)
        if (n >= 200 and trade.sip_ns == latest and latest % MINUTE_NS >= 50 * MINUTE_NS // 60
                and sets_open_close(trade.conditions)):  # fmt: skip
            return trades[:n]
    raise AssertionError("no such trade in the session")


@pytest.mark.long
async def test_a_restored_symbols_open_minute_closes_without_another_tick(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """The feed stops, the worker is replaced: the last minute still closes, on the idle
    clock of the worker that restored it."""
    first = start_worker("first", **TICK_WORKER, tick_idle_close_ms=600_000)
    trades = sorted(day_columns(SIM_SEED, "AAPL", SESSION).trades(), key=lambda t: t.report_ns)
    sent = feed_stopping_late_in_a_minute(trades)
    await produce_ticks(producer, settings, as_ticks(sent))

    async def all_folded() -> bool:
        return (await group_lag(settings))["ticks"] == 0

    assert await poll(all_folded, timeout_s=60), "the first worker folded every tick"
    first.stop()  # graceful: its state is flushed, its last minute still open
    start_worker("second", **TICK_WORKER, tick_idle_close_ms=1_000)
    last_ns = max(t.sip_ns for t in sent)
    start_ns = last_ns - last_ns % MINUTE_NS
    minute = [t for t in sorted(sent, key=lambda t: (t.sip_ns, t.sequence)) if start_ns <= t.sip_ns]
    bar = fold(minute, start_ns, start_ns + MINUTE_NS)
    assert bar is not None
    key = ("AAPL", "1m", datetime.fromtimestamp(start_ns / 1e9, tz=UTC))

    async def closed() -> tuple[Any, ...] | None:
        return (await session_bars(settings)).get(key)

    landed = await poll(closed, timeout_s=60)
    assert landed is not None, "the open minute was closed by the idle clock"
    assert landed[:5] + landed[6:] == (bar.open, bar.high, bar.low, bar.close, bar.volume,
                                       bar.transactions)  # fmt: skip


async def test_a_far_future_tick_does_not_silence_its_symbol(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer, sim: Any
) -> None:
    """A tick dated 2099 in the middle of a session is dead-lettered and moves nothing:
    the session's bars are the exchange's, as if it had not been sent."""
    start_worker(**TICK_WORKER)
    ticks = reported_ticks(["AAPL"], SESSION)
    half = len(ticks) // 2
    future = Tick(symbol="AAPL", ts=ms("2099-06-01"), price=ticks[half].price, size=100,
                  exchange=4, trade_id="99999999", sequence=1)  # fmt: skip
    await produce_ticks(producer, settings, ticks[:half] + [future] + ticks[half:])
    await produce_ticks(producer, settings, reported_ticks(["AAPL"], NEXT_SESSION))
    expected = await expected_session_bars(sim, ["AAPL"])
    # A killed worker's partitions move on after the session timeout, and its successor
    # restores their state first: minutes on a machine whose cores every test shares.
    ours = await poll(lambda: settled_session_bars(settings, len(expected)), timeout_s=300)
    assert (ours or await session_bars(settings)) == expected
    dead = await consume(settings, settings.topic("dlq"), until=lambda r: len(r) >= 1)
    assert [(r.key, r.value, dict(r.headers)["chronox-reason"]) for r in dead] == [
        (b"AAPL", future.to_json(), b"future_timestamp")
    ]


async def test_a_trade_sent_twice_is_counted_once_also_across_a_restart(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer, sim: Any
) -> None:
    """Every chunk of the session's trades is sent twice (two producers that both believe
    they lead the WebSocket); the last chunk before a worker is replaced is repeated
    after it, to the next worker, which knows the trades from the changelog.

    A repeat is recognised within the late limit: 50 pre-market trades span up to 68
    minutes of event time, so the late limit here is 90 minutes."""
    worker = {**TICK_WORKER, "tick_late_limit_ms": 90 * 60_000}
    first = start_worker("first", **worker)
    ticks = reported_ticks(["AAPL"], SESSION)
    chunks = [ticks[i : i + 50] for i in range(0, len(ticks), 50)]
    half = len(chunks) // 2
    for chunk in chunks[:half]:
        await produce_ticks(producer, settings, chunk + chunk)

    async def all_folded() -> bool:
        return (await group_lag(settings))["ticks"] == 0

    assert await poll(all_folded, timeout_s=60)
    first.stop()
    start_worker("second", **worker)
    await produce_ticks(producer, settings, chunks[half - 1])
    for chunk in chunks[half:]:
        await produce_ticks(producer, settings, chunk + chunk)
    await produce_ticks(producer, settings, reported_ticks(["AAPL"], NEXT_SESSION))
    expected = await expected_session_bars(sim, ["AAPL"])
    # A killed worker's partitions move on after the session timeout, and its successor
    # restores their state first: minutes on a machine whose cores every test shares.
    ours = await poll(lambda: settled_session_bars(settings, len(expected)), timeout_s=300)
    assert (ours or await session_bars(settings)) == expected
