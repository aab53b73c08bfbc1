"""Live: `chronox ingest --strategy snapshot+stream` against a simulator whose market is open.

The simulator's clock runs at 30x through a regular session, so a minute passes
every two seconds. The worker's leader streams the symbols' trades from the
WebSocket into the raw ticks topic, the tick aggregator builds 1m and 5m bars,
and they land in PostgreSQL and Redis; a forced disconnect loses trades, which
the refill brings back from REST.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from chronox_stream.client.registry import read_entries
from chronox_stream.settings import Settings
from tests.fixtures.sim import SimFactory
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, rest_aggregates

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(600)]

SYMBOLS = ("AAPL", "MSFT")
CLOCK_START = "2024-01-17T15:00:00Z"  # 10:00 in New York


def chronox(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    command = [sys.executable, "-m", "chronox_stream", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)


async def stream_rows(settings: Settings, tf: str) -> dict[tuple[str, datetime], Any]:
    rows = await fetch_rows(
        settings,
        "SELECT symbol, ts, open, high, low, close, volume, source FROM {schema}.bars "
        "WHERE tf = $1 AND ts >= $2",
        tf,
        datetime.fromisoformat(CLOCK_START),
    )
    return {(r["symbol"], r["ts"]): r for r in rows if r["source"] in ("stream", "api")}


async def open_market(sim_factory: SimFactory, timeframes: str) -> tuple[Any, dict[str, str]]:
    """A simulator whose session is open (30x), and the worker settings that stream from it."""
    market = await sim_factory(clock_start=CLOCK_START, speed=30, flatfiles=False)
    # Late trades (and their corrections) are test_tick_bars' subject; here every minute is
    # final when it closes, so REST's bars are the truth for every closed minute.
    await market.set_knobs(late_trades=False)
    overrides = {"polygon_rest_url": market.rest_url, "polygon_ws_url": market.ws_url,
                 "polygon_api_key": market.api_key, "tick_timeframes": timeframes}  # fmt: skip
    return market, overrides


async def rest_minutes(
    sim: Any, symbol: str, start: datetime, end: datetime
) -> dict[datetime, Any]:
    span = f"1/minute/{int(start.timestamp() * 1000)}/{int(end.timestamp() * 1000) - 1}"
    return {
        datetime.fromtimestamp(b["t"] / 1000, tz=UTC): (b["o"], b["h"], b["l"], b["c"], b["v"])
        for b in await rest_aggregates(sim.rest_url, sim.api_key, symbol, span)
    }


async def test_snapshot_stream_makes_live_bars_and_a_disconnect_leaves_no_hole(
    settings: Settings, start_worker: WorkerFactory, sim_factory: SimFactory
) -> None:
    market, overrides = await open_market(sim_factory, "1m,5m")
    live = settings.with_overrides(**overrides)
    start_worker(**overrides)
    await asyncio.to_thread(chronox, live, "ingest", "--symbols", *SYMBOLS, "--strategy",
                            "snapshot+stream")  # fmt: skip

    async def streaming(n: int, sources: tuple[str, ...] = ("stream", "api")) -> Any:
        rows = await stream_rows(live, "1m")
        ours = [s for (s, _), row in rows.items() if row["source"] in sources]
        return rows if all(ours.count(sym) >= n for sym in SYMBOLS) else None

    # Stream bars, not only the refill of the minutes before the subscription (api).
    assert await poll(lambda: streaming(3, ("stream",)), timeout_s=120), "no live minute bars"
    entries = {e.symbol: e for e in await read_entries(live)}
    assert set(entries) == set(SYMBOLS)
    assert all(e.strategy == "snapshot+stream" for e in entries.values())

    async def last_stream_moved() -> bool:
        later = {e.symbol: e for e in await read_entries(live)}
        return all(
            later[s].last_stream is not None
            and entries[s].last_stream is not None
            and later[s].last_stream > entries[s].last_stream  # type: ignore[operator]
            for s in SYMBOLS
        )

    assert await poll(last_stream_moved, timeout_s=60), "last_stream did not move"
    report = (await asyncio.to_thread(chronox, live, "status")).stdout
    lines = {line.split()[0]: line for line in report.splitlines() if line.strip()}
    assert all(lines[s].rstrip().endswith("yes") for s in SYMBOLS), report  # streaming
    assert "stream: connected since" in report and "consumer lag (messages): agents" in report

    assert await market.disconnect_ws() == 1, "one connection: the leader's"
    disconnected_at = datetime.fromtimestamp((await market.clock())["now_ns"] / 1e9, tz=UTC)
    await poll(lambda: streaming(12), timeout_s=120)

    async def refilled() -> Any:
        rows = await stream_rows(live, "1m")
        return any(r["source"] == "api" for r in rows.values())

    assert await poll(refilled, timeout_s=120), "the outage was not refilled from REST"

    async def around_the_disconnect() -> dict[str, tuple[datetime, datetime, Any, Any]]:
        """Per symbol: its first whole and its last minute, what we stored between, the truth."""
        rows = await stream_rows(live, "1m")
        compared = {}
        for symbol in SYMBOLS:
            ours = sorted(ts for s, ts in rows if s == symbol)
            first, last = ours[1], ours[-1]  # the first minute was joined halfway
            truth = await rest_minutes(market, symbol, first, last)
            got = {ts: tuple(rows[(symbol, ts)][k] for k in ("open", "high", "low", "close",
                                                             "volume"))
                   for ts in ours if first <= ts < last}  # fmt: skip
            compared[symbol] = (first, last, got, truth)
        return compared

    async def all_landed() -> Any:
        compared = await around_the_disconnect()
        whole = all(first < disconnected_at < last and got == truth
                    for first, last, got, truth in compared.values())  # fmt: skip
        return compared if whole else None

    # Refills and the minutes after the reconnect land a while after the first api row:
    # wait for them all, then judge.
    compared = await poll(all_landed, timeout_s=60) or await around_the_disconnect()
    for symbol, (first, last, got, truth) in compared.items():
        assert first < disconnected_at < last
        assert got == truth, f"{symbol}: a minute is missing or wrong around the disconnect"

    client = aioredis.from_url(live.redis_url.get_secret_value())
    try:
        latest = await client.get(f"{live.redis_prefix}bars:latest:AAPL:1m")
    finally:
        await client.aclose()
    assert latest is not None and b'"source":"' in latest
    assert await stream_rows(live, "5m"), "5m bars are built too"

    await asyncio.to_thread(chronox, live, "ingest", "--symbols", "NVDA", "--strategy",
                            "snapshot+stream", "--no-stream", "--wait")  # fmt: skip
    await asyncio.sleep(5)
    assert {e.symbol for e in await read_entries(live)} == set(SYMBOLS), "NVDA is not streamed"
    assert not [key for key in await stream_rows(live, "1m") if key[0] == "NVDA"]


async def test_a_new_leader_refills_what_the_killed_one_missed(
    settings: Settings, start_worker: WorkerFactory, sim_factory: SimFactory
) -> None:
    market, overrides = await open_market(sim_factory, "1m")
    live = settings.with_overrides(**overrides)
    first = start_worker("first", **overrides)
    await asyncio.to_thread(chronox, live, "ingest", "--symbols", "AAPL", "--strategy",
                            "stream")  # fmt: skip

    async def minutes(n: int) -> Any:
        rows = await stream_rows(live, "1m")
        return rows if len(rows) >= n else None

    assert await poll(lambda: minutes(3), timeout_s=120), "no live minute bars"
    first.kill()  # SIGKILL: whatever it held in memory about the stream is gone
    killed_at = datetime.fromtimestamp((await market.clock())["now_ns"] / 1e9, tz=UTC)
    await asyncio.sleep(12)  # six simulated minutes without a leader
    start_worker("second", **overrides)
    restarted_at = datetime.fromtimestamp((await market.clock())["now_ns"] / 1e9, tz=UTC)

    async def past_the_gap() -> Any:
        rows = await minutes(1)
        return rows if rows and max(ts for _, ts in rows) > restarted_at else None

    assert await poll(past_the_gap, timeout_s=120), "the new leader streams no bars"

    async def gap_filled() -> Any:
        rows = await stream_rows(live, "1m")
        ours = sorted(ts for _, ts in rows)
        start, end = ours[1], ours[-1]  # the first minute was joined halfway
        truth = await rest_minutes(market, "AAPL", start, end)
        got = {ts: tuple(rows[("AAPL", ts)][k] for k in ("open", "high", "low", "close", "volume"))
               for ts in ours if start <= ts < end}  # fmt: skip
        return (start, end) if got == truth and start < killed_at < restarted_at < end else None

    assert await poll(gap_filled, timeout_s=120), "the minutes without a leader were not refilled"
