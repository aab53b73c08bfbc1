"""Our Polygon REST client against the simulator's faults: retries, Retry-After, pagination,
errors that name the cause but never the key."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.domain.trading_dates import date_bound
from chronox_stream.sources.polygon_rest import PolygonError, PolygonRest, RetryPolicy, collect
from tests.integration.helpers import ms, rest_aggregates

pytestmark = pytest.mark.integration

DAY_START = datetime(2024, 1, 16, tzinfo=UTC)
DAY_END = datetime(2024, 1, 16, 23, 59, 59, tzinfo=UTC)
FAST = RetryPolicy(attempts=6, base_s=0.01, cap_s=0.05)


async def fetch(sim: Any, key: str | None = None, retry: RetryPolicy = FAST) -> list[Any]:
    async with aiohttp.ClientSession() as session:
        client = PolygonRest(session, base_url=sim.rest_url,
                             api_key=SecretStr(key or sim.api_key), retry=retry)  # fmt: skip
        return await collect(client.aggregates("AAPL", TIMEFRAMES["1m"], DAY_START, DAY_END))


async def truth(sim: Any) -> list[Any]:
    span = f"1/minute/{ms('2024-01-16')}/{ms('2024-01-16', end_of_day=True)}"
    return await rest_aggregates(sim.rest_url, sim.api_key, "AAPL", span)


async def test_pages_are_followed_to_the_end(sim_knobs: Any) -> None:
    expected = await truth(sim_knobs)
    await sim_knobs.set_knobs(page_size=50)
    bars = await fetch(sim_knobs)
    assert [int(b.ts.timestamp() * 1000) for b in bars] == [b["t"] for b in expected]
    assert len(expected) > 100, "the day needs several pages of 50"


async def test_server_errors_and_malformed_pages_are_retried(sim_knobs: Any) -> None:
    expected = await truth(sim_knobs)
    await sim_knobs.set_knobs(fail_next=2, malformed_next=1, page_size=200)
    assert len(await fetch(sim_knobs)) == len(expected)


async def test_429_waits_for_retry_after(sim_knobs: Any) -> None:
    await sim_knobs.set_knobs(rate_limit=1, rate_window_s=2)
    started = time.monotonic()
    await fetch(sim_knobs)
    await fetch(sim_knobs, retry=RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05))
    assert time.monotonic() - started >= 1.0, "the next window's budget was waited for"


async def test_errors_name_the_cause_not_the_key(sim_knobs: Any) -> None:
    with pytest.raises(PolygonError) as info:
        await fetch(sim_knobs, key="wrong-secret-key-123")
    assert info.value.status == 401
    assert "wrong-secret-key-123" not in str(info.value)
    await sim_knobs.set_knobs(forbidden_tickers=["AAPL"])
    with pytest.raises(PolygonError) as forbidden:
        await fetch(sim_knobs)
    assert forbidden.value.status == 403 and "entitled" in str(forbidden.value)


async def test_bars_are_fetched_unadjusted_across_a_split(sim: Any, sim_factory: Any) -> None:
    (split,) = (await sim.info())["splits"]
    symbol, day = split["ticker"], date.fromisoformat(split["execution_date"])
    before = day - timedelta(days=1)  # New York dates, as Polygon and the request's rule read them
    start, end = date_bound(before, end=False), date_bound(day, end=True)
    async with aiohttp.ClientSession() as session:
        client = PolygonRest(session, base_url=sim.rest_url, api_key=SecretStr(sim.api_key))
        bars = await collect(client.aggregates(symbol, TIMEFRAMES["1d"], start, end))
    span = f"1/day/{before.isoformat()}/{day.isoformat()}"
    raw = await rest_aggregates(sim.rest_url, sim.api_key, symbol, span)
    adjusted = await rest_aggregates(sim.rest_url, sim.api_key, symbol, span, adjusted=True)
    assert [(b.open, b.close, b.volume) for b in bars] == [(r["o"], r["c"], r["v"]) for r in raw]
    assert raw[0]["o"] != adjusted[0]["o"], "the day before the split differs when adjusted"
    clock = f"{split['execution_date']}T20:00:00Z"
    on_the_day = await sim_factory(flatfiles=False, clock_start=clock)
    async with aiohttp.ClientSession() as session:
        client = PolygonRest(session, base_url=on_the_day.rest_url,
                             api_key=SecretStr(on_the_day.api_key))  # fmt: skip
        previous = await client.previous_close(symbol)
    assert previous is not None and (previous.open, previous.close) == (raw[0]["o"], raw[0]["c"])
