"""Outages: PostgreSQL or Redis stopped for a while under a worker delays work, never loses it.

Each test stops one server of a private pair (``tests/fixtures/outage.py``; the
shared stack is never stopped) for ``OUTAGE_S`` seconds, once during a throttled
api backfill and once while the worker streams a live market; the backfill also
runs through a frozen server (SIGSTOP: connections hang rather than fail, as
with a black-holed host, so only the clients' timeouts notice). Afterwards
PostgreSQL holds exactly the bars the simulator's REST API serves for the same
symbols, range and timeframe: none missing, none extra, none different. While
one server is down the other keeps receiving its share, and while Redis is down
the stream's Redis-only writes (its state, in-progress bars, the REST budget)
stop nothing: a forced WebSocket disconnect during the outage is refilled.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from chronox_stream.client.ingest import send_request
from chronox_stream.runtime.topics import read_to_end
from chronox_stream.settings import Settings
from chronox_stream.stack.private import PrivateStack, ServiceName
from tests.fixtures.sim import SimFactory, SimServer
from tests.integration.conftest import WorkerFactory, isolated
from tests.integration.helpers import (
    fetch_rows,
    poll,
    rest_aggregates,
    trading_date_ms,
    wait_finished,
)

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(240)]

OUTAGE_S = 12.0
SYMBOLS = ("AAPL", "MSFT", "NVDA")
BACKFILL = {"symbols": list(SYMBOLS), "strategy": "api", "timeframe": "1m",
            "start": "2024-01-16", "end": "2024-01-17", "throttle_ms": 5}  # fmt: skip
LIVE_START = "2024-01-17T15:00:00Z"  # 10:00 in New York
LIVE_SPEED = 30  # a minute every 2 s
OTHER: dict[ServiceName, ServiceName] = {"postgres": "redis", "redis": "postgres"}

Bars = dict[tuple[str, datetime], tuple[float, ...]]


@pytest.fixture
async def settings(
    private_stack: PrivateStack, sim: SimServer, tmp_path: Path
) -> AsyncIterator[Settings]:
    """This module's isolated settings point at the private pair instead of the shared one."""
    async for value in isolated(private_stack.settings, sim, tmp_path):
        yield value


def _values(row: Any) -> tuple[float, ...]:
    return tuple(float(row[k]) for k in ("open", "high", "low", "close", "volume"))


async def stored(settings: Settings, since: datetime, sources: tuple[str, ...]) -> Bars:
    """The 1m rows from ``since`` on whose source is one of ``sources``."""
    rows = await fetch_rows(
        settings,
        "SELECT symbol, ts, open, high, low, close, volume, source FROM {schema}.bars "
        "WHERE tf = '1m' AND ts >= $1",
        since,
    )
    return {(r["symbol"], r["ts"]): _values(r) for r in rows if r["source"] in sources}


async def rest_bars(sim: SimServer, symbols: tuple[str, ...], start: int, end: int) -> Bars:
    """The simulator's REST minute bars of ``symbols`` with ``start <= t <= end`` (epoch ms)."""
    bars: Bars = {}
    for symbol in symbols:
        for b in await rest_aggregates(sim.rest_url, sim.api_key, symbol,
                                       f"1/minute/{start}/{end}"):  # fmt: skip
            ts = datetime.fromtimestamp(b["t"] / 1000, tz=UTC)
            bars[(symbol, ts)] = (b["o"], b["h"], b["l"], b["c"], b["v"])
    return bars


async def row_count(settings: Settings) -> int:
    rows = await fetch_rows(settings, "SELECT count(*) AS n FROM {schema}.bars")
    return int(rows[0]["n"]) if rows else 0


async def latest_bars(settings: Settings) -> list[bytes | None]:
    """The ``bars:latest`` envelopes of ``SYMBOLS`` at 1m, as Redis holds them now."""
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    try:
        keys = [f"{settings.redis_prefix}bars:latest:{s}:1m" for s in SYMBOLS]
        return list(await client.mget(keys))
    finally:
        await client.aclose()


async def progress(settings: Settings, server: ServiceName) -> object:
    """A marker that changes while the sink writes to ``server``."""
    return await row_count(settings) if server == "postgres" else await latest_bars(settings)


async def unfinished(settings: Settings, request_id: str) -> int:
    """Work items of the request that have not reported ``finished`` yet."""
    events = [orjson.loads(r.value) for r in await read_to_end(settings, settings.topic("status"))
              if r.key == request_id.encode()]  # fmt: skip
    accepted = sum(e["count"] for e in events if e["state"] == "accepted")
    return accepted - sum(1 for e in events if e["state"] == "finished")


def differences(got: Bars, truth: Bars) -> str:
    missing = sorted(set(truth) - set(got))
    extra = sorted(set(got) - set(truth))
    wrong = sorted(k for k in set(got) & set(truth) if got[k] != truth[k])
    return (f"{len(missing)} missing (first {missing[:3]}), {len(extra)} extra (first "
            f"{extra[:3]}), {len(wrong)} different (first {wrong[:3]})")  # fmt: skip


@pytest.mark.parametrize("how", ["stopped", "frozen"])
@pytest.mark.parametrize("down", ["postgres", "redis"])
async def test_backfill_through_an_outage_stores_every_bar_once(
    down: ServiceName,
    how: str,
    settings: Settings,
    start_worker: WorkerFactory,
    private_stack: PrivateStack,
    sim: SimServer,
) -> None:
    truth = await rest_bars(sim, SYMBOLS, trading_date_ms("2024-01-16"),
                            trading_date_ms("2024-01-17", end_of_day=True))  # fmt: skip
    assert len(truth) > 3000, "three symbols, two trading days of minutes"
    start_worker()
    request_id = f"outage-{down}-{uuid.uuid4().hex[:8]}"
    await send_request(settings, {**BACKFILL, "request_id": request_id})
    assert await poll(lambda: _positive(row_count(settings)), timeout_s=60), "nothing stored"

    other = OTHER[down]
    if how == "stopped":
        await private_stack.stop(down)
    else:
        private_stack.freeze(down)  # connections hang instead of failing: timeouts must see it
    try:
        await asyncio.sleep(2)
        early = await progress(settings, other)
        await asyncio.sleep(OUTAGE_S - 2)
        late = await progress(settings, other)
        running = await unfinished(settings, request_id)
    finally:
        await private_stack.start(down)
    assert running, "the backfill ended before the outage did: make it last longer"

    await wait_finished(settings, request_id, timeout_s=120)
    await poll(lambda: _reaches(row_count(settings), len(truth)), timeout_s=90)
    got = await stored(settings, datetime(2024, 1, 16, tzinfo=UTC), ("api",))
    assert got == truth, differences(got, truth)
    revisions = await fetch_rows(settings, "SELECT DISTINCT revision FROM {schema}.bars")
    assert [r["revision"] for r in revisions] == [1], "a replayed batch changed rows"

    newest = {s: max(ts for sym, ts in truth if sym == s) for s in SYMBOLS}
    assert await poll(lambda: _latest_are(settings, newest), timeout_s=30), (
        "Redis did not get its share after the outage"
    )
    assert early != late, f"{other} got nothing while {down} was {how}: the writes are coupled"


async def test_db_first_waits_for_the_database_and_publishes_nothing_before_it(
    settings: Settings, start_worker: WorkerFactory, private_stack: PrivateStack, sim: SimServer
) -> None:
    truth = await rest_bars(sim, ("AAPL",), trading_date_ms("2024-01-16"),
                            trading_date_ms("2024-01-16", end_of_day=True))  # fmt: skip
    start_worker()
    request_id = f"db-first-{uuid.uuid4().hex[:8]}"
    await private_stack.stop("postgres")
    try:
        await send_request(settings, {"request_id": request_id, "symbols": ["AAPL"],
                                      "strategy": "api", "start": "2024-01-16",
                                      "end": "2024-01-16", "publish_mode": "db-first"})
        await asyncio.sleep(OUTAGE_S)
        assert await unfinished(settings, request_id) == 1, "the phase waits for the database"
        on_kafka = await read_to_end(settings, settings.topic("bars.1m"))
        assert on_kafka == [], "an envelope reached Kafka before its row reached PostgreSQL"
    finally:
        await private_stack.start("postgres")
    events = await wait_finished(settings, request_id, timeout_s=120)
    assert not [e for e in events if e["state"] == "failed"], "an outage fails no phase"
    got = await stored(settings, datetime(2024, 1, 16, tzinfo=UTC), ("api",))
    assert got == truth, differences(got, truth)
    on_kafka = await read_to_end(settings, settings.topic("bars.1m"))
    assert len({r.value for r in on_kafka}) == len(truth)


@pytest.mark.parametrize("down", ["postgres", "redis"])
async def test_stream_through_an_outage_refills_and_stores_every_bar_once(
    down: ServiceName,
    settings: Settings,
    start_worker: WorkerFactory,
    private_stack: PrivateStack,
    sim_factory: SimFactory,
) -> None:
    market = await sim_factory(clock_start=LIVE_START, speed=LIVE_SPEED, flatfiles=False)
    await market.set_knobs(late_trades=False)  # every minute is final when it closes
    overrides = {"polygon_rest_url": market.rest_url, "polygon_ws_url": market.ws_url,
                 "polygon_api_key": market.api_key, "tick_timeframes": "1m",
                 "tick_live_ms": 250, "rest_requests_per_minute": 1000}  # fmt: skip
    live = settings.with_overrides(**overrides)
    start_worker(**overrides)
    request = {"request_id": f"live-{uuid.uuid4().hex[:8]}", "symbols": list(SYMBOLS),
               "strategy": "stream"}  # fmt: skip
    await send_request(live, request)
    since = datetime.fromisoformat(LIVE_START)

    async def minutes_after(moment: datetime, n: int) -> bool:
        rows = await stored(live, since, ("stream", "api"))
        return all(sum(1 for s, ts in rows if s == sym and ts > moment) >= n for sym in SYMBOLS)

    assert await poll(lambda: minutes_after(since, 3), timeout_s=90), "no live minute bars"

    await private_stack.stop(down)
    try:
        await asyncio.sleep(3)
        await market.disconnect_ws()  # trades are lost until the reconnect: a refill's job
        await asyncio.sleep(OUTAGE_S - 3)
    finally:
        await private_stack.start(down)
    back = datetime.fromtimestamp((await market.clock())["now_ns"] / 1e9, tz=UTC)

    assert await poll(lambda: minutes_after(back, 4), timeout_s=120), "the stream did not resume"

    async def whole() -> bool:
        """Every minute between each symbol's first whole one and its last stored equals the
        exchange's: refills are due a minute after the reconnect, and land when they land."""
        rows = await stored(live, since, ("stream", "api"))
        for symbol in SYMBOLS:
            ours = sorted(ts for s, ts in rows if s == symbol)
            first, last = ours[1], ours[-1]
            truth = await rest_bars(market, (symbol,), _ms(first), _ms(last) - 1)
            if {k: v for k, v in rows.items() if k[0] == symbol and first <= k[1] < last} != truth:
                return False
        return True

    await poll(whole, timeout_s=60)  # the assertions below say what is missing, if anything
    rows = await stored(live, since, ("stream", "api"))
    assert await stored(live, since, ("api",)), "the trades missed were not refilled from REST"
    for symbol in SYMBOLS:
        ours = sorted(ts for s, ts in rows if s == symbol)
        first, last = ours[1], ours[-1]  # the first minute was joined halfway
        assert first < back - timedelta(seconds=OUTAGE_S * LIVE_SPEED) and back < last
        truth = await rest_bars(market, (symbol,), _ms(first), _ms(last) - 1)
        got = {k: v for k, v in rows.items() if k[0] == symbol and first <= k[1] < last}
        assert got == truth, f"{symbol}: {differences(got, truth)}"


async def _positive(count: Any) -> bool:
    return bool(await count > 0)


async def _reaches(count: Any, n: int) -> bool:
    return bool(await count >= n)


async def _latest_are(settings: Settings, newest: dict[str, datetime]) -> bool:
    envelopes = await latest_bars(settings)
    seen = [orjson.loads(e)["ts"] if e else None for e in envelopes]
    wanted = [newest[s].strftime("%Y-%m-%dT%H:%M:%SZ") for s in SYMBOLS]
    return seen == wanted


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
