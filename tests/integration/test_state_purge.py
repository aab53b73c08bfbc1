"""State purge: tick state and dedup buckets unused for the horizon leave their changelogs.

The horizon is 3 s here (``CHRONOX_STATE_HORIZON_DAYS`` takes fractions). A
symbol trades, falls silent past the horizon (its tick state is tombstoned),
then trades again the next day: its bars are right both times, and the dedup
buckets of the first day, not written since, are tombstoned while the stream
bars agent handles the second day's bars of the same partition.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.domain.tick_state import restore
from chronox_stream.runtime.topics import read_to_end
from chronox_stream.settings import Settings
from chronox_stream.sim.aggregate import fold
from chronox_stream.sim.market import Trade, day_columns
from tests.fixtures.sim import SIM_SEED
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll
from tests.integration.tick_data import NEXT_SESSION, SESSION, TICK_WORKER, as_ticks, produce_ticks

pytestmark = [pytest.mark.integration, pytest.mark.long]

HORIZON_S = 3.0
MINUTE_NS = 60_000_000_000
Row = tuple[Any, ...]


def first_trades(day: date, n: int) -> list[Trade]:
    """AAPL's first ``n`` trades of ``day`` in the order they were reported."""
    return sorted(day_columns(SIM_SEED, "AAPL", day).trades(), key=lambda t: t.report_ns)[:n]


def minute_bars(trades: list[Trade]) -> dict[datetime, Row]:
    """The minute bars of exactly ``trades``, folded by the simulator's reference fold."""
    by_minute: dict[int, list[Trade]] = {}
    for trade in sorted(trades, key=lambda t: (t.sip_ns, t.sequence)):
        by_minute.setdefault(trade.sip_ns - trade.sip_ns % MINUTE_NS, []).append(trade)
    bars = {}
    for start, inside in by_minute.items():
        agg = fold(inside, start, start + MINUTE_NS)
        if agg is not None:
            bars[datetime.fromtimestamp(start / 1e9, tz=UTC)] = (
                agg.open, agg.high, agg.low, agg.close, agg.volume, agg.vwap, agg.transactions
            )  # fmt: skip
    return bars


async def minute_rows(settings: Settings, day: date) -> dict[datetime, Row]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = await fetch_rows(
        settings,
        "SELECT ts, open, high, low, close, volume, vwap, transactions FROM {schema}.bars "
        "WHERE symbol = 'AAPL' AND tf = '1m' AND ts >= $1 AND ts < $2",
        start,
        start + timedelta(days=1),
    )
    return {r["ts"]: tuple(r)[1:] for r in rows}


async def rows_become(
    settings: Settings, day: date, want: dict[datetime, Row]
) -> dict[datetime, Row]:
    """The day's minute rows once they equal ``want`` (or as they are after 90 s)."""

    async def equal() -> bool:
        return await minute_rows(settings, day) == want

    await poll(equal, timeout_s=90)
    return await minute_rows(settings, day)


async def test_state_purge(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker(**TICK_WORKER, tick_idle_close_ms=1_000,
                 state_horizon_days=HORIZON_S / 86_400)  # fmt: skip
    first = first_trades(SESSION, 400)
    await produce_ticks(producer, settings, as_ticks(first))

    async def tick_state_purged() -> list[Any] | None:
        records = await read_to_end(settings, settings.topic("ticks.state"))
        written = [r for r in records if r.value is not None]
        return records if written and not restore((r.key, r.value) for r in records) else None

    state = await poll(tick_state_purged, timeout_s=60)
    assert state, "AAPL's tick state was tombstoned once it was silent for the horizon"
    written = {r.key for r in state if r.value is not None}
    assert {key[:2] for key in written} == {b"m|", b"e|", b"t|", b"w|", b"h|"}
    assert written <= {r.key for r in state if r.value is None}, "every key is tombstoned"
    first_bars = minute_bars(first)
    assert len(first_bars) > 5
    assert await rows_become(settings, SESSION, first_bars) == first_bars

    await asyncio.sleep(2 * HORIZON_S)  # the first day's dedup buckets are now stale
    second = first_trades(NEXT_SESSION, 400)
    await produce_ticks(producer, settings, as_ticks(second))
    second_bars = minute_bars(second)
    assert await rows_become(settings, NEXT_SESSION, second_bars) == second_bars, (
        "a purged symbol's later ticks make their bars"
    )

    async def buckets_purged() -> bool:
        records = await read_to_end(settings, f"{settings.app_id}-dedup-changelog")
        last = {r.key: r.value for r in records}  # the compacted view: the last record wins
        return last.get(b"AAPL|1m|2024-01-16", b"") is None and any(
            r.key == b"AAPL|1m|2024-01-16" and r.value is not None for r in records
        )

    assert await poll(buckets_purged, timeout_s=60), "the first day's dedup bucket is tombstoned"
    assert await minute_rows(settings, SESSION) == first_bars, "PostgreSQL keeps its rows"
