"""Raw ticks on Kafka to stream bars in PostgreSQL: the exchange's own bars, once each.

The ticks are the simulator's trades of a whole session, produced to the raw
ticks topic in the order they were reported (151 of AAPL's come late, up to
15.8 minutes), as any feed would; the expected bars are what the simulator's
REST API serves for the same session, which folds the same trades.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.settings import Settings
from chronox_stream.sim.market import day_columns
from chronox_stream.ticks import Tick
from chronox_stream.topics import read_to_end
from tests.fixtures.sim import SIM_SEED
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, ms, poll, rest_aggregates

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "NVDA")
SESSION, NEXT_SESSION = date(2024, 1, 16), date(2024, 1, 17)
SPANS = {"1m": "1/minute", "5m": "5/minute", "1d": "1/day"}
WORKER = {"tick_timeframes": "1m,5m,1d", "tick_late_limit_ms": 20 * 60_000}


def reported_ticks(symbol: str, day: date) -> list[Tick]:
    trades = sorted(day_columns(SIM_SEED, symbol, day).trades(), key=lambda t: t.report_ns)
    return [Tick(symbol=symbol, ts=t.sip_ns // 1_000_000, price=t.price, size=t.size,
                 conditions=t.conditions, exchange=t.exchange, trade_id=t.trade_id,
                 sequence=t.sequence) for t in trades]  # fmt: skip


async def produce(producer: AIOKafkaProducer, settings: Settings, ticks: list[Tick]) -> None:
    topic = settings.topic("ticks.raw")
    for tick in ticks:
        await producer.send(topic, tick.to_json(), key=tick.symbol.encode())
    await producer.flush()


NEXT_MIDNIGHT = datetime(2024, 1, 17, 5, 0, tzinfo=UTC)  # New York's: the 16th's session ends


async def expected_bars(sim: Any) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    out = {}
    for symbol in SYMBOLS:
        for tf, span in SPANS.items():
            tail = (
                f"{span}/{ms(SESSION.isoformat())}/{ms(NEXT_SESSION.isoformat(), end_of_day=True)}"
            )
            for agg in await rest_aggregates(sim.rest_url, sim.api_key, symbol, tail):
                ts = datetime.fromtimestamp(agg["t"] / 1000, tz=UTC)
                if ts < NEXT_MIDNIGHT:
                    out[(symbol, tf, ts)] = (agg["o"], agg["h"], agg["l"], agg["c"], agg["v"],
                                             agg["vw"], agg["n"])  # fmt: skip
    return out


async def stream_bars(settings: Settings) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    rows = await fetch_rows(
        settings,
        "SELECT symbol, tf, ts, open, high, low, close, volume, vwap, transactions, source "
        "FROM {schema}.bars WHERE ts < $1",
        NEXT_MIDNIGHT,  # the next session's bars are only there to close the 16th's
    )
    assert {r["source"] for r in rows} <= {"stream"}
    return {(r["symbol"], r["tf"], r["ts"]): (r["open"], r["high"], r["low"], r["close"],
                                              r["volume"], r["vwap"], r["transactions"])
            for r in rows}  # fmt: skip


async def settled(settings: Settings, want: int) -> dict[tuple[str, str, datetime], Any] | None:
    first = await stream_bars(settings)
    if len(first) < want:
        return None
    await asyncio.sleep(1)
    second = await stream_bars(settings)
    return second if second == first else None


def envelopes_per_key(settings: Settings, records: list[Any]) -> Counter[str]:
    return Counter(orjson.loads(r.value)["dedup_key"] for r in records)


async def test_stream_bars_equal_the_exchanges_bars_including_late_corrections(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer, sim: Any
) -> None:
    start_worker(**WORKER)
    for day in (SESSION, NEXT_SESSION):
        await produce(producer, settings, [t for s in SYMBOLS for t in reported_ticks(s, day)])
    expected = await expected_bars(sim)
    ours = await poll(lambda: settled(settings, len(expected)), timeout_s=180)
    assert (ours or await stream_bars(settings)) == expected
    minutes = envelopes_per_key(settings, await read_to_end(settings, settings.topic("bars.1m")))
    corrected = [key for key, n in minutes.items() if n > 1]
    assert corrected, "late trades arrived after their minute closed: corrections were due"
    assert len(corrected) < len(minutes) / 4, "only late trades' minutes are emitted twice"


async def test_a_worker_killed_mid_stream_loses_and_double_counts_nothing(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer, sim: Any
) -> None:
    first = start_worker("first", **WORKER)
    ticks = [t for s in SYMBOLS for t in reported_ticks(s, SESSION)]
    half = len(ticks) // 2
    await produce(producer, settings, ticks[:half])

    async def some_bars() -> bool:
        return len(await stream_bars(settings)) > 100

    await poll(some_bars, timeout_s=120)
    first.kill()  # SIGKILL: no flush, no commit, mid-window
    start_worker("second", **WORKER)
    await produce(producer, settings, ticks[half:])
    await produce(producer, settings, [t for s in SYMBOLS for t in reported_ticks(s, NEXT_SESSION)])
    expected = await expected_bars(sim)
    ours = await poll(lambda: settled(settings, len(expected)), timeout_s=180)
    assert (ours or await stream_bars(settings)) == expected
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
