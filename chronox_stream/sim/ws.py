"""Polygon's ``/stocks`` WebSocket: handshake, subscriptions and a feed paced by the sim clock.

Every server message is a JSON array. A connection gets ``connected``, must
``auth`` within :data:`AUTH_TIMEOUT_S` (``auth_success``, or ``auth_failed``
and a close, or ``auth_timeout`` and a close), then may ``subscribe`` and
``unsubscribe`` to ``T.X``, ``A.X``, ``AM.X`` (and ``Q.X``, accepted but
silent: there are no quotes) with ``*`` for every symbol of the universe.
Each :data:`TICK_S` the feed sends what fell due since the last tick
(:mod:`chronox_stream.sim.feed`), in arrays of at most :data:`MAX_BATCH`
events. A key may hold ``ws_max_connections`` connections: a newer one
kicks the oldest off with ``max_connections``. ``ws_drop_after`` closes a
connection after that many events; ``/_sim/ws/disconnect`` closes all of them
with ``force_disconnect``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from chronox_stream.sim.clock import SimClock
from chronox_stream.sim.feed import CHANNELS, Timed, feed_events
from chronox_stream.sim.gate import key_accepted
from chronox_stream.sim.knobs import KnobBoard
from chronox_stream.sim.market import Market

AUTH_TIMEOUT_S = 10.0
TICK_S = 0.05
MAX_BATCH = 500
SILENT_CHANNELS = frozenset({"Q"})


def status(kind: str, message: str) -> dict[str, str]:
    return {"ev": "status", "status": kind, "message": message}


@dataclass(eq=False)
class Connection:
    """One client connection; ``cursor_ns`` is the sim time up to which the feed was sent."""

    ws: web.WebSocketResponse
    key: str = ""
    subscriptions: set[tuple[str, str]] = field(default_factory=set)
    cursor_ns: int = 0
    sent: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, events: list[dict[str, Any]]) -> None:
        async with self.lock:
            await self.ws.send_str(orjson.dumps(events).decode())

    async def close(self, code: int, reason: dict[str, str] | None = None) -> None:
        try:
            if reason is not None and not self.ws.closed:
                await self.send([reason])
        except ConnectionError:
            pass
        await self.ws.close(code=code)


def parse_params(params: str) -> list[tuple[str, str]]:
    """``"AM.AAPL, T.*"`` as ``[("AM", "AAPL"), ("T", "*")]``; malformed items are dropped."""
    found = []
    for item in params.split(","):
        channel, _, symbol = item.strip().partition(".")
        if channel and symbol:
            found.append((channel, symbol if symbol == "*" else symbol.upper()))
    return found


class WsHub:
    """All WebSocket connections of one simulator."""

    def __init__(
        self, market: Market, clock: SimClock, board: KnobBoard, universe: Iterable[str]
    ) -> None:
        self._market = market
        self._clock = clock
        self._board = board
        self._universe = tuple(universe)
        self._authed: list[Connection] = []
        self._all: set[Connection] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Connection(ws)
        self._all.add(conn)
        pump: asyncio.Task[None] | None = None
        try:
            await conn.send([status("connected", "Connected Successfully")])
            if await self._authenticate(conn):
                pump = asyncio.create_task(self._pump(conn))
                await self._serve(conn)
        except ConnectionError:
            pass
        finally:
            if pump is not None:
                pump.cancel()
            self._all.discard(conn)
            if conn in self._authed:
                self._authed.remove(conn)
            if not ws.closed:
                await ws.close()
        return ws

    async def _authenticate(self, conn: Connection) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + AUTH_TIMEOUT_S
        while True:
            try:
                msg = await asyncio.wait_for(conn.ws.receive(), deadline - loop.time())
            except TimeoutError:
                await conn.close(
                    WSCloseCode.POLICY_VIOLATION, status("auth_timeout", "authentication timed out")
                )
                return False
            if msg.type != WSMsgType.TEXT:
                return False
            action, params = _action(msg.data)
            if action != "auth":
                await conn.send([status("auth_required", "authentication required")])
                continue
            if not key_accepted(self._board.current.api_key, params or None):
                await conn.close(
                    WSCloseCode.POLICY_VIOLATION, status("auth_failed", "authentication failed")
                )
                return False
            conn.key, conn.cursor_ns = params, self._clock.now_ns()
            await conn.send([status("auth_success", "authenticated")])
            await self._admit(conn)
            return True

    async def _admit(self, conn: Connection) -> None:
        """Register ``conn``; kick the oldest connections of its key beyond the limit."""
        same_key = [c for c in self._authed if c.key == conn.key]
        excess = len(same_key) + 1 - self._board.current.ws_max_connections
        self._authed.append(conn)
        for old in same_key[: max(excess, 0)]:
            self._authed.remove(old)
            await old.close(
                WSCloseCode.POLICY_VIOLATION,
                status("max_connections", "Maximum number of connections exceeded."),
            )

    async def _serve(self, conn: Connection) -> None:
        async for msg in conn.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            action, params = _action(msg.data)
            if action in ("subscribe", "unsubscribe"):
                await conn.send(self._subscription(conn, action, params))
            elif action == "auth":
                await conn.send([status("auth_success", "authenticated")])
            else:
                await conn.send([status("error", f"unknown action: {action}")])

    def _subscription(self, conn: Connection, action: str, params: str) -> list[dict[str, str]]:
        replies = []
        for channel, symbol in parse_params(params):
            if channel not in CHANNELS | SILENT_CHANNELS:
                replies.append(status("error", f"unknown channel: {channel}"))
                continue
            if action == "subscribe":
                conn.subscriptions.add((channel, symbol))
                replies.append(status("success", f"subscribed to: {channel}.{symbol}"))
            else:
                conn.subscriptions.discard((channel, symbol))
                replies.append(status("success", f"unsubscribed to: {channel}.{symbol}"))
        return replies or [status("error", "no valid subscription in params")]

    def _wanted(self, conn: Connection) -> dict[str, frozenset[str]]:
        """Channels per symbol of a connection's subscriptions (``*`` = the universe)."""
        wanted: dict[str, set[str]] = {}
        for channel, symbol in conn.subscriptions:
            if channel not in CHANNELS:
                continue
            for sym in self._universe if symbol == "*" else (symbol,):
                wanted.setdefault(sym, set()).add(channel)
        return {sym: frozenset(channels) for sym, channels in wanted.items()}

    def _due(self, wanted: dict[str, frozenset[str]], after_ns: int, upto_ns: int) -> list[Timed]:
        late = self._board.current.late_trades
        events = [
            event
            for sym, channels in wanted.items()
            for event in feed_events(self._market, sym, channels, after_ns, upto_ns, late)
        ]
        events.sort()
        return events

    async def _pump(self, conn: Connection) -> None:
        """Send what fell due each tick; a clock moved back restarts the feed from there."""
        try:
            while not conn.ws.closed:
                await asyncio.sleep(TICK_S)
                now = self._clock.now_ns()
                after, conn.cursor_ns = conn.cursor_ns, now
                if now > after:
                    await self._send_due(conn, after, now)
        except ConnectionError:
            return

    async def _send_due(self, conn: Connection, after_ns: int, upto_ns: int) -> None:
        due = await asyncio.to_thread(self._due, self._wanted(conn), after_ns, upto_ns)
        limit = self._board.current.ws_drop_after
        if limit is not None:
            due = due[: max(limit - conn.sent, 0)]
        for i in range(0, len(due), MAX_BATCH):
            await conn.send([t.event for t in due[i : i + MAX_BATCH]])
        conn.sent += len(due)
        if limit is not None and conn.sent >= limit:
            await conn.close(WSCloseCode.GOING_AWAY)

    async def disconnect_all(self) -> int:
        """Close every connection with ``force_disconnect``; the number closed."""
        victims = list(self._all)
        for conn in victims:
            await conn.close(
                WSCloseCode.GOING_AWAY, status("force_disconnect", "Disconnected by the server.")
            )
        return len(victims)

    async def shutdown(self) -> None:
        for conn in list(self._all):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def _action(data: str) -> tuple[str, str]:
    """``(action, params)`` of a client message; ``("", "")`` when it is not one."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "", ""
    if not isinstance(message, dict):
        return "", ""
    action, params = message.get("action"), message.get("params", "")
    return (action if isinstance(action, str) else ""), (params if isinstance(params, str) else "")
