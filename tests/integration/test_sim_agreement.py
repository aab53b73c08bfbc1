"""One seeded morning, every interface: flat files, REST, WebSocket and a re-aggregation agree.

Minute bars of 2024-01-16, 10:00-10:35 New York, for the fixture's symbols,
are read from the ``minute_aggs_v1`` file (through S3), from REST (pages of 7
bars, following ``next_url``) and from the last ``AM`` event of each minute on
a second simulator with the same seed whose clock runs 600x from 10:00 until
every correction is in (late trades arrive up to 15 minutes late). They are
also recomputed here, independently of the simulator's code, from the
``trades_v1`` file and from the ``T`` events, by FORMATS.md's condition rules.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from tests.fixtures.sim import SimFactory, SimServer

pytestmark = pytest.mark.integration

START = datetime(2024, 1, 16, 15, 0, tzinfo=UTC)  # 10:00 New York
START_MS = int(START.timestamp() * 1000)
END_MS = START_MS + 35 * 60_000  # windows [10:00, 10:35)
SETTLED_MS = END_MS + 16 * 60_000  # every late trade of those windows reported by then

# FORMATS.md, "Trade conditions in bars".
NO_HIGH_LOW = {2, 7, 12, 13, 15, 16, 20, 21, 37, 52, 53}
NO_OPEN_CLOSE = NO_HIGH_LOW | {5, 10, 22, 29, 33}
NO_VOLUME = {15, 16, 38}

TradeRow = tuple[str, int, int, int, frozenset[int]]  # symbol, t ms, cents, size, conditions
BarKey = tuple[str, int]


def recompute(trades: Iterable[TradeRow]) -> dict[BarKey, dict[str, Any]]:
    """Minute bars from trades in time order: the rules restated, not the simulator's code."""
    groups: dict[BarKey, list[TradeRow]] = {}
    for trade in trades:
        groups.setdefault((trade[0], trade[1] - trade[1] % 60_000), []).append(trade)
    bars = {}
    for key, group in groups.items():
        last = [t for t in group if not t[4] & NO_OPEN_CLOSE]
        extremes = [t[2] for t in group if not t[4] & NO_HIGH_LOW]
        counted = [t for t in group if not t[4] & NO_VOLUME]
        if not last:
            continue
        volume = sum(t[3] for t in counted)
        close = last[-1][2] / 100
        notional = sum(t[2] * t[3] for t in counted)
        bars[key] = {
            "o": last[0][2] / 100, "h": max(extremes) / 100, "l": min(extremes) / 100,
            "c": close, "v": volume, "n": len(counted),
            "vw": round(notional / (100 * volume), 4) if volume else close,
        }  # fmt: skip
    return bars


def _in_range(bars: dict[BarKey, dict[str, Any]]) -> dict[BarKey, dict[str, Any]]:
    return {k: v for k, v in bars.items() if START_MS <= k[1] < END_MS}


def _fields(bars: dict[BarKey, dict[str, Any]], *names: str) -> dict[BarKey, tuple[Any, ...]]:
    return {k: tuple(v[n] for n in names) for k, v in bars.items()}


async def _rest(sim: SimServer) -> dict[BarKey, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    bars: dict[BarKey, dict[str, Any]] = {}
    async with aiohttp.ClientSession() as session:
        for symbol in sim.symbols:
            url: str | None = (
                f"{sim.rest_url}/v2/aggs/ticker/{symbol}/range/1/minute/{START_MS}/{END_MS - 1}"
            )
            params: dict[str, str] | None = {"limit": "7"}
            pages = 0
            while url is not None:
                async with session.get(url, params=params, headers=headers) as resp:
                    body = await resp.json()
                bars.update({(symbol, b["t"]): b for b in body.get("results", [])})
                url, params, pages = body.get("next_url"), None, pages + 1
            assert pages >= 5, "the small page size paginates"
    return bars


async def _flat_files(sim: SimServer) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    async with sim.s3_client() as s3:
        found = []
        for kind in ("minute_aggs_v1", "trades_v1"):
            key = f"us_stocks_sip/{kind}/2024/01/2024-01-16.csv.gz"
            response = await s3.get_object(Bucket=sim.bucket, Key=key)
            async with response["Body"] as body:
                text = gzip.decompress(await body.read()).decode()
            found.append(list(csv.DictReader(io.StringIO(text))))
    return found[0], found[1]


async def _websocket(fast: SimServer) -> list[dict[str, Any]]:
    """Every event of ``T.*`` and ``AM.*`` from 10:00 until ``SETTLED_MS``, clock at 600x."""
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(fast.ws_url) as ws:
        await ws.receive_json()
        await ws.send_json({"action": "auth", "params": fast.api_key})
        assert (await ws.receive_json())[0]["status"] == "auth_success"
        await ws.send_json({"action": "subscribe", "params": "T.*,AM.*"})
        assert len(await ws.receive_json()) == 2
        await fast.set_clock(speed=600)
        while (await fast.clock())["now_ns"] < SETTLED_MS * 10**6:
            events.extend(await _receive(ws, for_s=0.2))
        await fast.set_clock(speed=0)
        events.extend(await _receive(ws, for_s=0.5))
    return events


async def _receive(ws: aiohttp.ClientWebSocketResponse, *, for_s: float) -> list[dict[str, Any]]:
    """Events received during ``for_s`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + for_s
    found: list[dict[str, Any]] = []
    while (left := deadline - loop.time()) > 0:
        try:
            found.extend(await asyncio.wait_for(ws.receive_json(), left))
        except TimeoutError:
            break
    return found


async def test_flat_files_rest_websocket_and_trades_agree(
    sim: SimServer, sim_factory: SimFactory
) -> None:
    fast = await sim_factory(clock_start=START.isoformat(), speed=0, flatfiles=False)
    events = await _websocket(fast)
    rest = await _rest(sim)
    minute_rows, trade_rows = await _flat_files(sim)
    symbols = set(sim.symbols)

    flat = {
        (r["ticker"], int(r["window_start"]) // 10**6): {
            "o": float(r["open"]),
            "h": float(r["high"]),
            "l": float(r["low"]),
            "c": float(r["close"]),
            "v": int(r["volume"]),
            "n": int(r["transactions"]),
        }  # fmt: skip
        for r in minute_rows
        if r["ticker"] in symbols
    }
    file_trades = [
        (r["ticker"], int(r["sip_timestamp"]) // 10**6, round(float(r["price"]) * 100),
         int(r["size"]), frozenset(int(c) for c in r["conditions"].split(",") if c))
        for r in trade_rows
        if r["ticker"] in symbols
    ]  # fmt: skip
    trade_events = sorted((e for e in events if e["ev"] == "T"), key=lambda e: (e["t"], e["q"]))
    ws_trades = [
        (e["sym"], e["t"], round(e["p"] * 100), e["s"], frozenset(e.get("c", [])))
        for e in trade_events
    ]
    minute_events = [e for e in events if e["ev"] == "AM"]
    last_am = {(e["sym"], e["s"]): e for e in minute_events}

    rest = _in_range(rest)
    assert len(rest) > 90, "three symbols, 35 busy regular minutes"
    ohlcvn = ("o", "h", "l", "c", "v", "n")
    ohlcv_vw = ("o", "h", "l", "c", "v", "vw")
    assert _fields(_in_range(flat), *ohlcvn) == _fields(rest, *ohlcvn)
    assert _fields(_in_range(last_am), *ohlcv_vw) == _fields(rest, *ohlcv_vw)
    assert _in_range(recompute(file_trades)) == _fields_dict(rest)
    assert _in_range(recompute(ws_trades)) == _fields_dict(rest)

    window_trades = sorted(t for t in file_trades if START_MS <= t[1] < END_MS)
    assert window_trades == sorted(t for t in ws_trades if START_MS <= t[1] < END_MS)

    first_am: dict[BarKey, dict[str, Any]] = {}
    for e in minute_events:
        first_am.setdefault((e["sym"], e["s"]), e)
    corrected = [k for k in _in_range(last_am) if first_am[k]["v"] != last_am[k]["v"]]
    assert corrected, "late trades re-sent some AM bars with more volume"


def _fields_dict(bars: dict[BarKey, dict[str, Any]]) -> dict[BarKey, dict[str, Any]]:
    names = ("o", "h", "l", "c", "v", "n", "vw")
    return {k: {n: v[n] for n in names} for k, v in bars.items()}
