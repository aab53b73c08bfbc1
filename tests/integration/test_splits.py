"""Raw at rest, adjusted on read: a worker ingests the simulator's split into PostgreSQL, a
backfill across the split stores the unadjusted bars, and ``adjusted_bars`` returns the
simulator's ``adjusted=true`` bars.

The backfill starts a day before the compared range, so that the comparison does not
depend on how a range's first instant is read (the date rule is another part of the issue).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.client.registry import send_commands
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.domain.splits import SplitRecord
from chronox_stream.settings import Settings
from chronox_stream.sinks.postgres import PostgresSink
from tests.fixtures.sim import SimServer
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, rest_aggregates, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: New York midnights: the 10th to the 16th of January 2024 (the split is on the 12th).
START = datetime(2024, 1, 10, 5, tzinfo=UTC)
END = datetime(2024, 1, 17, 5, tzinfo=UTC)
SPANS = {"1m": "1/minute", "1d": "1/day"}
FIELDS = ("open", "high", "low", "close", "volume", "vwap", "transactions")
Bars = dict[tuple[str, int], tuple[Any, ...]]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _served(sim: SimServer, symbol: str, *, adjusted: bool) -> Bars:
    bars: Bars = {}
    for tf, span in SPANS.items():
        tail = f"{span}/{_ms(START)}/{_ms(END) - 1}"
        for b in await rest_aggregates(sim.rest_url, sim.api_key, symbol, tail, adjusted=adjusted):
            bars[(tf, b["t"])] = (b["o"], b["h"], b["l"], b["c"], b["v"], b["vw"], b["n"])
    return bars


def _as_bars(rows: list[Any]) -> Bars:
    return {(r["tf"], _ms(r["ts"])): tuple(r[f] for f in FIELDS) for r in rows}


async def _backfill(producer: AIOKafkaProducer, settings: Settings, symbol: str, tf: str) -> None:
    request_id = f"split-{tf}"
    request = {"request_id": request_id, "symbols": [symbol], "strategy": "api",
               "timeframe": tf, "start": (START - timedelta(days=1)).isoformat(),
               "end": END.isoformat(), "enable_stream": False}  # fmt: skip
    await producer.send_and_wait(settings.topic("control"), key=request_id.encode(),
                                 value=orjson.dumps(request))  # fmt: skip
    await wait_finished(settings, request_id)


async def test_splits_are_ingested_and_adjusted_bars_are_read_from_postgres(
    settings: Settings, sim: SimServer, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    (split,) = (await sim.info())["splits"]
    symbol = split["ticker"]
    await send_commands(settings, [RegistryCommand(op="add", symbol=symbol, strategy="api")])
    start_worker()

    async def ingested() -> list[Any]:
        return await fetch_rows(settings, "SELECT symbol, execution_date, split_from, split_to "
                                          "FROM {schema}.splits")  # fmt: skip

    rows = await poll(ingested, timeout_s=90)
    assert [tuple(r) for r in rows] == [(symbol, date.fromisoformat(split["execution_date"]),
                                         split["split_from"], split["split_to"])]  # fmt: skip

    for tf in SPANS:
        await _backfill(producer, settings, symbol, tf)
    raw = await _served(sim, symbol, adjusted=False)
    adjusted = await _served(sim, symbol, adjusted=True)
    assert raw != adjusted, "the days before the split differ"
    assert {tf for tf, _ in raw} == set(SPANS) and len(raw) > 1000

    stored = await fetch_rows(settings, "SELECT * FROM {schema}.bars WHERE symbol = $1 "
                                        "AND ts >= $2 AND ts < $3", symbol, START, END)  # fmt: skip
    assert _as_bars(stored) == raw, "stored bars are the unadjusted ones"
    read: list[Any] = []
    for tf in SPANS:
        read += await fetch_rows(settings, "SELECT * FROM {schema}.adjusted_bars($1, $2, $3, $4)",
                                 symbol, tf, START, END)  # fmt: skip
    assert _as_bars(read) == adjusted, "the read path returns the adjusted bars"
    view = await fetch_rows(settings, "SELECT * FROM {schema}.bars_adjusted WHERE symbol = $1 AND "
                            "tf = '1d' AND ts >= $2 AND ts < $3", symbol, START, END)  # fmt: skip
    assert _as_bars(view) == {k: v for k, v in adjusted.items() if k[0] == "1d"}
    assert {r["split_factor"] for r in view} == {split["split_to"] / split["split_from"], 1.0}


async def test_split_upserts_and_the_migration_are_idempotent(settings: Settings) -> None:
    sink = await PostgresSink.connect(settings.postgres_dsn.get_secret_value(),
                                      schema=settings.postgres_schema, timeout_s=10)  # fmt: skip
    try:
        await asyncio.gather(sink.migrate(), sink.migrate())
        await sink.migrate()
        first = [SplitRecord("NVDA", date(2024, 1, 12), 1.0, 4.0),
                 SplitRecord("AAPL", date(2020, 8, 31), 1.0, 4.0)]  # fmt: skip
        assert await sink.write_splits(first) == 2
        assert await sink.write_splits(first) == 0, "a replay changes nothing"
        corrected = [SplitRecord("NVDA", date(2024, 1, 12), 1.0, 5.0)]
        assert await sink.write_splits(corrected) == 1
    finally:
        await sink.close()
    rows = await fetch_rows(settings, "SELECT symbol, split_to FROM {schema}.splits "
                                      "ORDER BY symbol")  # fmt: skip
    assert [tuple(r) for r in rows] == [("AAPL", 4.0), ("NVDA", 5.0)]
