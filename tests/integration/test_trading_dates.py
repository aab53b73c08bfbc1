"""A date in a request is a New York trading date: a one-day backfill stores the whole
extended session, up to 20:00 New York time (01:00 UTC of the next day), bar for bar equal
to the simulator's REST bars of that date.

2024-01-12 is a Friday in winter time, so its last after-hours hour, 19:00-20:00 New York,
falls on Saturday in UTC; the fixture simulator's clock (2024-01-18T01:30Z) is days past it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.settings import Settings
from tests.fixtures.sim import SimServer
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, rest_aggregates, wait_finished

pytestmark = pytest.mark.integration

DAY = "2024-01-12"
NEW_YORK = ZoneInfo("America/New_York")
# 19:00 and 20:00 New York time (EST, UTC-5) on the 12th.
LAST_HOUR = (datetime(2024, 1, 13, 0, tzinfo=UTC), datetime(2024, 1, 13, 1, tzinfo=UTC))
FIELDS = ("o", "h", "l", "c", "v", "n")
Bars = dict[tuple[str, int], tuple[Any, ...]]


async def _rest(sim: SimServer, span: str, names: tuple[str, ...]) -> Bars:
    """The simulator's 1m bars over ``span`` (``from/to`` of its aggregates path)."""
    bars: Bars = {}
    for symbol in sim.symbols:
        found = await rest_aggregates(sim.rest_url, sim.api_key, symbol, f"1/minute/{span}")
        bars.update({(symbol, b["t"]): tuple(b[n] for n in names) for b in found})
    return bars


async def _stored(settings: Settings, expected: int, names: tuple[str, ...]) -> Bars:
    """Every stored 1m bar, once PostgreSQL holds at least ``expected`` rows."""
    columns = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume",
               "n": "transactions", "vw": "vwap"}  # fmt: skip
    sql = f"SELECT symbol, ts, {', '.join(columns[n] for n in names)} FROM {{schema}}.bars "
    sql += "WHERE tf = '1m'"

    async def landed() -> list[Any] | None:
        rows = await fetch_rows(settings, sql)
        return rows if len(rows) >= expected else None

    rows = await poll(landed, timeout_s=120) or await fetch_rows(settings, sql)
    return {
        (r["symbol"], int(r["ts"].timestamp() * 1000)): tuple(r[columns[n]] for n in names)
        for r in rows
    }


async def _backfill(
    settings: Settings, producer: AIOKafkaProducer, rid: str, **fields: Any
) -> list[Any]:
    doc = {"request_id": rid, "symbols": ["AAPL", "MSFT", "NVDA"], **fields}
    await producer.send_and_wait(settings.topic("control"), key=rid.encode(),
                                 value=orjson.dumps(doc))  # fmt: skip
    return await wait_finished(settings, rid, timeout_s=180)


def _in_last_hour(bars: Bars) -> set[tuple[str, int]]:
    first, end = (int(moment.timestamp() * 1000) for moment in LAST_HOUR)
    return {key for key in bars if first <= key[1] < end}


@pytest.mark.parametrize("strategy", ["api", "flatpack"])
async def test_a_date_range_stores_the_whole_new_york_session(
    strategy: str,
    settings: Settings,
    sim: SimServer,
    start_worker: WorkerFactory,
    producer: AIOKafkaProducer,
) -> None:
    names = (*FIELDS, "vw") if strategy == "api" else FIELDS  # day files carry no vwap
    truth = await _rest(sim, f"{DAY}/{DAY}", names)  # the simulator's (Polygon's) date rule
    last_hour = _in_last_hour(truth)
    assert {symbol for symbol, _ in last_hour} == set(sim.symbols), "each trades after 19:00"
    start_worker()
    events = await _backfill(settings, producer, f"dates-{strategy}", strategy=strategy,
                             start=DAY, end=DAY)  # fmt: skip
    assert {e["state"] for e in events if e.get("phase") == strategy} == {"started", "done"}
    stored = await _stored(settings, len(truth), names)
    assert _in_last_hour(stored) == last_hour
    assert stored == truth
    dates = {datetime.fromtimestamp(ts / 1000, NEW_YORK).date() for _, ts in stored}
    assert dates == {date(2024, 1, 12)}


async def test_an_instant_range_in_the_new_york_evening_reads_that_days_flat_file(
    settings: Settings, sim: SimServer, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """00:00-01:00Z on Saturday the 13th is Friday the 12th's last after-hours hour in New
    York: the flatpack phase takes it from the 12th's day file."""
    first, end = (int(moment.timestamp() * 1000) for moment in LAST_HOUR)
    truth = await _rest(sim, f"{first}/{end - 1}", FIELDS)
    assert truth, "the seeded market trades in that hour"
    start_worker()
    start, end = (moment.isoformat() for moment in LAST_HOUR)
    events = await _backfill(settings, producer, "evening-1", strategy="flatpack",
                             start=start, end=end)  # fmt: skip
    assert {e["state"] for e in events if e.get("phase") == "flatpack"} == {"started", "done"}
    assert await _stored(settings, len(truth), FIELDS) == truth
