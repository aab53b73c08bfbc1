"""The WebSocket: Polygon's handshake and statuses, connection limits, drops, late corrections."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from tests.fixtures.sim import SimFactory, SimServer

pytestmark = pytest.mark.integration

Ws = aiohttp.ClientWebSocketResponse


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Ws]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        yield ws


async def receive(ws: Ws, timeout_s: float = 5) -> list[dict[str, Any]]:
    message = await asyncio.wait_for(ws.receive(), timeout_s)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    events = message.json()
    assert isinstance(events, list), "every server message is a JSON array"
    return events


async def closed(ws: Ws, timeout_s: float = 5) -> bool:
    message = await asyncio.wait_for(ws.receive(), timeout_s)
    return message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def authenticated(ws: Ws, key: str) -> None:
    assert await receive(ws) == [
        {"ev": "status", "status": "connected", "message": "Connected Successfully"}
    ]
    await ws.send_json({"action": "auth", "params": key})
    assert await receive(ws) == [
        {"ev": "status", "status": "auth_success", "message": "authenticated"}
    ]


async def test_handshake_subscribe_and_unsubscribe(sim: SimServer) -> None:
    async with connect(sim.ws_url) as ws:
        await receive(ws)
        await ws.send_json({"action": "subscribe", "params": "AM.AAPL"})
        assert (await receive(ws))[0]["status"] == "auth_required"
        await ws.send_json({"action": "auth", "params": sim.api_key})
        assert (await receive(ws))[0]["status"] == "auth_success"
        await ws.send_json({"action": "subscribe", "params": "AM.AAPL,T.MSFT, A.*"})
        assert [e["message"] for e in await receive(ws)] == [
            "subscribed to: AM.AAPL", "subscribed to: T.MSFT", "subscribed to: A.*",
        ]  # fmt: skip
        await ws.send_json({"action": "unsubscribe", "params": "T.MSFT"})
        assert await receive(ws) == [
            {"ev": "status", "status": "success", "message": "unsubscribed to: T.MSFT"}
        ]


async def test_a_wrong_key_fails_and_closes(sim: SimServer) -> None:
    async with connect(sim.ws_url) as ws:
        await receive(ws)
        await ws.send_json({"action": "auth", "params": "not-the-key"})
        assert (await receive(ws))[0]["status"] == "auth_failed"
        assert await closed(ws)


async def test_a_second_connection_with_the_key_kicks_the_first(sim: SimServer) -> None:
    async with connect(sim.ws_url) as first, connect(sim.ws_url) as second:
        await authenticated(first, sim.api_key)
        await authenticated(second, sim.api_key)
        assert (await receive(first))[0]["status"] == "max_connections"
        assert await closed(first)
        await second.send_json({"action": "subscribe", "params": "T.AAPL"})
        assert (await receive(second))[0]["status"] == "success"


async def test_forced_disconnect(sim: SimServer) -> None:
    async with connect(sim.ws_url) as ws:
        await authenticated(ws, sim.api_key)
        assert await sim.disconnect_ws() >= 1
        assert (await receive(ws))[0]["status"] == "force_disconnect"
        assert await closed(ws)


async def _collect(ws: Ws, seconds: float) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    events: list[dict[str, Any]] = []
    while (left := deadline - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        events.extend(message.json())
    return events


async def test_drop_after_closes_after_that_many_events(sim_factory: SimFactory) -> None:
    fast = await sim_factory(
        clock_start="2024-01-17T15:00:00Z", speed=300, flatfiles=False,
        extra=("--ws-drop-after", "40"),
    )  # fmt: skip
    async with connect(fast.ws_url) as ws:
        await authenticated(ws, fast.api_key)
        await ws.send_json({"action": "subscribe", "params": "T.*"})
        await receive(ws)
        events = await _collect(ws, 10)
        assert len(events) == 40 and {e["ev"] for e in events} == {"T"}
        assert ws.closed


async def test_late_trades_resend_minute_bars_only_when_on(sim_factory: SimFactory) -> None:
    fast = await sim_factory(clock_start="2024-01-17T15:00:00Z", speed=0, flatfiles=False)

    async def minute_bars(late: bool) -> Counter[tuple[str, int]]:
        await fast.set_knobs(late_trades=late)
        await fast.set_clock(now="2024-01-17T15:00:00Z", speed=0)
        async with connect(fast.ws_url) as ws:
            await authenticated(ws, fast.api_key)
            await ws.send_json({"action": "subscribe", "params": "AM.*"})
            await receive(ws)
            await fast.set_clock(speed=1200)
            events = await _collect(ws, 1.5)
            await fast.set_clock(speed=0)
        return Counter((e["sym"], e["s"]) for e in events if e["ev"] == "AM")

    with_late = await minute_bars(True)
    without = await minute_bars(False)
    assert len(without) > 30 and max(without.values()) == 1
    assert max(with_late.values()) > 1, "a late trade re-sent its minute's bar"
