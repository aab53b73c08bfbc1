"""Our WebSocket client against the simulator's: data, live subscriptions, drops, refusals.

The simulator here (one for the module) starts at 10:00 New York on a trading day
with a clock 30 times faster than real time, so trades flow within moments of
subscribing, and the session lasts hours beyond the module's few minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from chronox_stream.contracts.ticks import tick_from_polygon
from chronox_stream.sources.polygon_ws import Backoff, ConnectionChange, PolygonStream
from tests.fixtures.sim import SimFactory, SimServer
from tests.integration.helpers import poll

# One process runs the module, so that its tests share one simulator.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("polygon-ws-client")]

QUICK = Backoff(initial_s=0.05, cap_s=0.5)
LOGGER = "chronox_stream.sources.polygon_ws"


@dataclass
class Recorder:
    """What the client handed to its callbacks."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    changes: list[ConnectionChange] = field(default_factory=list)

    async def on_events(self, events: list[dict[str, Any]]) -> None:
        self.batches.append(events)

    async def on_connection(self, change: ConnectionChange) -> None:
        self.changes.append(change)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch]

    def symbols(self) -> set[str]:
        return {e["sym"] for e in self.events}

    def connects(self) -> int:
        return sum(change.connected for change in self.changes)

    def drops(self) -> list[ConnectionChange]:
        return [change for change in self.changes if not change.connected]


@dataclass
class Running:
    client: PolygonStream
    recorder: Recorder
    task: asyncio.Task[None]


@asynccontextmanager
async def running(
    sim: SimServer,
    symbols: set[str],
    *,
    key: str | None = None,
    url: str | None = None,
    idle_timeout_s: float = 5.0,
) -> AsyncIterator[Running]:
    recorder = Recorder()
    async with aiohttp.ClientSession() as session:
        client = PolygonStream(
            session,
            url=url or sim.ws_url,
            api_key=sim.api_key if key is None else key,
            on_events=recorder.on_events,
            on_connection=recorder.on_connection,
            idle_timeout_s=idle_timeout_s,
            backoff=QUICK,
        )
        client.set_symbols(symbols)
        task = asyncio.create_task(client.run())
        try:
            yield Running(client, recorder, task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture(scope="module")
async def shared_market(module_sim_factory: SimFactory) -> SimServer:
    return await module_sim_factory(clock_start="2024-01-17T15:00:00Z", speed=30, flatfiles=False)


@pytest.fixture
async def market(shared_market: SimServer) -> AsyncIterator[SimServer]:
    """The module's simulator; after each test its knobs are reset and a connection left
    open is closed, so the next test starts with none."""
    yield shared_market
    await shared_market.reset_knobs()
    await shared_market.disconnect_ws()


async def until(condition: Any, timeout_s: float = 30) -> None:
    async def check() -> bool:
        return bool(condition())

    assert await poll(check, timeout_s=timeout_s), "timed out waiting"


class BlackHole:
    """A TCP relay to the simulator that can stop moving bytes without closing anything.

    That is how a dead network path looks to both ends: no reset, no FIN, only
    silence, which the client must notice by itself.
    """

    def __init__(self, ws_url: str) -> None:
        target = urlsplit(ws_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 80)
        self._path = target.path
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._relays: set[asyncio.Task[Any]] = set()
        self._sockets: list[asyncio.StreamWriter] = []
        self.ws_url = ""

    async def __aenter__(self) -> BlackHole:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{port}{self._path}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Relays end by themselves once their sockets close (cancelling a stream server's
        # handler makes Python 3.11 log a spurious error).
        self._server.close()
        for writer in self._sockets:
            writer.close()
        self.thaw()
        await asyncio.gather(*self._relays)
        await self._server.wait_closed()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        self._sockets.append(client_out)
        try:
            server_in, server_out = await asyncio.open_connection(*self._target)
            self._sockets.append(server_out)
            await asyncio.gather(
                self._pipe(client_in, server_out),
                self._pipe(server_in, client_out),
                return_exceptions=True,
            )
        finally:
            client_out.close()
            self._relays.discard(task)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                await self._flowing.wait()
                if sink.is_closing():
                    break
                sink.write(chunk)
                await sink.drain()
        finally:
            sink.close()


async def test_authenticates_subscribes_and_hands_on_trades(market: SimServer) -> None:
    async with running(market, {"AAPL"}) as run:
        await until(lambda: len(run.recorder.events) >= 5)
        assert run.client.connected
        [change] = run.recorder.changes
        assert change.connected and change.reason == "authenticated and subscribed"
        assert all(run.recorder.batches), "one non-empty call per server message"
        events = run.recorder.events
        assert {(e["ev"], e["sym"]) for e in events} == {("T", "AAPL")}, "no statuses, only T"
        assert {tick_from_polygon(e).symbol for e in events} == {"AAPL"}, "valid trades"
    assert not run.client.connected


async def test_symbols_change_on_the_live_connection(
    market: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    async with running(market, {"AAPL"}) as run:
        await until(lambda: "AAPL" in run.recorder.symbols())
        caplog.clear()
        run.client.set_symbols({"AAPL", "MSFT"})
        await until(lambda: "MSFT" in run.recorder.symbols())
        assert "subscribed to: T.MSFT" in caplog.text
        assert "T.AAPL" not in caplog.text, "only the difference was sent"

        run.client.set_symbols({"MSFT"})
        await until(lambda: "unsubscribed to: T.AAPL" in caplog.text)
        run.recorder.batches.clear()
        await until(lambda: len(run.recorder.events) >= 5)
        assert run.recorder.symbols() == {"MSFT"}, "AAPL's trades stopped"
        assert [c.connected for c in run.recorder.changes] == [True], "never reconnected"


async def test_a_forced_disconnect_is_reported_and_healed(market: SimServer) -> None:
    async with running(market, {"AAPL"}) as run:
        await until(lambda: run.recorder.events)
        assert await market.disconnect_ws() == 1
        await until(lambda: run.recorder.connects() == 2)
        assert [c.connected for c in run.recorder.changes] == [True, False, True]
        assert run.recorder.drops()[0].reason == "force_disconnect"
        run.recorder.batches.clear()
        await until(lambda: run.recorder.events)
        assert run.recorder.symbols() == {"AAPL"}, "subscribed again on the new connection"


async def test_a_silent_connection_is_detected_and_replaced(market: SimServer) -> None:
    async with BlackHole(market.ws_url) as hole:
        async with running(market, {"AAPL"}, url=hole.ws_url, idle_timeout_s=1.0) as run:
            await until(lambda: run.recorder.events)
            hole.freeze()
            await until(lambda: run.recorder.drops(), timeout_s=10)
            assert run.recorder.drops()[0].reason.startswith("nothing heard")
            await asyncio.sleep(2)  # reconnects meet the same silence, and time out
            assert run.recorder.connects() == 1
            hole.thaw()
            await until(lambda: run.recorder.connects() == 2)
            run.recorder.batches.clear()
            await until(lambda: run.recorder.events)


async def test_a_wrong_key_is_logged_without_the_key_and_retried(
    market: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-key-that-must-not-leak"
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    def refusals() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.levelno == logging.ERROR and "auth_failed" in r.msg]

    async with running(market, {"AAPL"}, key=wrong) as run:
        await until(lambda: len(refusals()) >= 2)
        assert not run.task.done(), "still trying"
        assert not run.client.connected and run.recorder.changes == []
        assert wrong not in repr(run.client)
    assert "API key" in refusals()[0].getMessage()
    assert wrong not in caplog.text
    assert all(wrong not in str(r.args) for r in caplog.records)


async def test_a_second_client_with_the_key_takes_over_and_the_first_backs_off(
    market: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    await market.set_knobs(ws_max_connections=1)
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with running(market, {"AAPL"}) as first:
        await until(lambda: first.recorder.connects() == 1)
        async with running(market, {"AAPL"}) as second:
            await until(lambda: second.recorder.connects() == 1)
            await until(lambda: first.recorder.drops())
            kicked = first.recorder.drops()[0]
            assert kicked.reason == "max_connections"
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any("another client uses this API key" in w for w in warnings)
            await until(lambda: first.recorder.connects() == 2)
            back = [c for c in first.recorder.changes if c.connected][1]
            assert (back.at - kicked.at).total_seconds() >= QUICK.cap_s, "waited the cap"


async def test_a_failing_callback_stops_the_client_instead_of_losing_trades(
    market: SimServer,
) -> None:

    async def broken(events: list[dict[str, Any]]) -> None:
        raise OSError("the sink is gone")  # an OSError must not pass for a network error

    async with aiohttp.ClientSession() as session:
        client = PolygonStream(
            session, url=market.ws_url, api_key=market.api_key, on_events=broken, backoff=QUICK
        )
        client.set_symbols({"AAPL"})
        with pytest.raises(OSError, match="the sink is gone"):
            await asyncio.wait_for(client.run(), timeout=30)
        assert not client.connected
