"""Horizontal scale: workers join and die while ticks flow and a backfill runs.

Three workers share the symbols by partition (tables with a standby replica);
one of the first two is SIGKILLed mid-run. PostgreSQL must end with every
expected bar, once (its key is the bar's), with the exchange's values: delivery
is at least once, and dedup and idempotent writes absorb the repeats.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.client.status import group_lag
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import (
    fetch_rows,
    poll,
    rest_aggregates,
    trading_date_ms,
    wait_finished,
)
from tests.integration.tick_data import (
    NEXT_SESSION,
    SESSION,
    TICK_WORKER,
    expected_session_bars,
    produce_ticks,
    reported_ticks,
    session_bars,
    settled_session_bars,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SYMBOLS = ("AAPL", "MSFT", "NVDA")
BACKFILL_START, BACKFILL_END = "2024-01-08", "2024-01-12"


async def backfill_truth(sim: Any) -> dict[tuple[str, datetime], tuple[float, ...]]:
    span = f"1/minute/{BACKFILL_START}/{BACKFILL_END}"  # New York dates, as the request's
    return {
        (symbol, datetime.fromtimestamp(b["t"] / 1000, tz=UTC)): (b["o"], b["h"], b["l"], b["c"],
                                                                  b["v"])
        for symbol in SYMBOLS
        for b in await rest_aggregates(sim.rest_url, sim.api_key, symbol, span)
    }  # fmt: skip


async def backfilled(settings: Settings) -> dict[tuple[str, datetime], tuple[float, ...]]:
    rows = await fetch_rows(
        settings,
        "SELECT symbol, ts, open, high, low, close, volume FROM {schema}.bars "
        "WHERE tf = '1m' AND ts >= $1 AND ts <= $2",
        datetime.fromtimestamp(trading_date_ms(BACKFILL_START) / 1000, UTC),
        datetime.fromtimestamp(trading_date_ms(BACKFILL_END, end_of_day=True) / 1000, UTC),
    )
    return {(r["symbol"], r["ts"]): (r["open"], r["high"], r["low"], r["close"], r["volume"])
            for r in rows}  # fmt: skip


async def start_backfill(producer: AIOKafkaProducer, settings: Settings) -> None:
    request = {"request_id": "scale-1", "symbols": list(SYMBOLS), "strategy": "api",
               "start": BACKFILL_START, "end": BACKFILL_END, "throttle_ms": 1}  # fmt: skip
    await producer.send_and_wait(
        settings.topic("control"), key=b"scale-1", value=orjson.dumps(request)
    )


async def wait_until_both_flow(settings: Settings) -> None:
    async def both_flowing() -> bool:
        return len(await session_bars(settings)) > 100 and len(await backfilled(settings)) > 100

    assert await poll(both_flowing, timeout_s=180), "ticks and the backfill did not both move"


async def assert_everything_landed_once(settings: Settings, sim: Any) -> None:
    await wait_finished(settings, "scale-1", timeout_s=300)
    truth = await backfill_truth(sim)

    async def all_backfilled() -> Any:
        rows = await backfilled(settings)
        return rows if len(rows) >= len(truth) else None

    assert (await poll(all_backfilled, timeout_s=120) or await backfilled(settings)) == truth
    expected = await expected_session_bars(sim, SYMBOLS)
    ours = await poll(lambda: settled_session_bars(settings, len(expected)), timeout_s=240)
    lag = await group_lag(settings)
    assert (ours or await session_bars(settings)) == expected, f"uncommitted per group: {lag}"


@pytest.mark.long
async def test_workers_join_and_die_while_ticks_flow_and_a_backfill_runs(
    settings: Settings, sim: Any, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    worker = {**TICK_WORKER, "table_standby_replicas": 1}
    first = start_worker("w1", **worker)
    start_worker("w2", **worker)
    await start_backfill(producer, settings)
    ticks = reported_ticks(SYMBOLS, SESSION)
    third = len(ticks) // 3
    await produce_ticks(producer, settings, ticks[:third])
    start_worker("w3", **worker)
    await produce_ticks(producer, settings, ticks[third : 2 * third])
    await wait_until_both_flow(settings)
    first.kill()
    await produce_ticks(producer, settings, ticks[2 * third :])
    await produce_ticks(producer, settings, reported_ticks(SYMBOLS, NEXT_SESSION))
    await assert_everything_landed_once(settings, sim)

