"""A long-lived client of Polygon's stocks WebSocket: auth, live subscriptions, reconnects.

Contract. :meth:`PolygonStream.run` holds one connection until it is
cancelled: it connects, sends ``auth``, subscribes ``{channel}.{symbol}`` for
every channel and wanted symbol, then reads. Each server message (a JSON
array) that carries data goes to ``on_events`` in arrival order, its status
events left out; statuses are logged. :meth:`PolygonStream.set_symbols` may be
called at any time; on a live connection only the difference is sent, because
reconnecting would drop trades that the server never replays.
``on_connection`` hears when the feed starts (authenticated and subscribed)
and when it stops, so a caller knows which span to refill from REST. The
next message is read only once ``on_events`` returns, so a slow callback gets
the connection dropped (Polygon disconnects slow consumers) rather than
buffering without bound. An exception raised by a callback ends ``run()``:
losing trades silently would be worse than stopping.

Reconnects back off exponentially with full jitter
(:class:`~chronox_stream.runtime.retry.Backoff`), so many clients that lost
the same server do not return in step; the attempt count starts over once a
connection delivered data or stayed authenticated longer than the backoff's
cap. Two refusals wait the cap itself: ``auth_failed`` (a wrong key does not
fix itself, but the process must live on until someone fixes it) and
``max_connections`` (another client took over the key; coming straight back
would kick it off in turn, and the two would fight in a tight loop).

A connection silent for ``idle_timeout_s`` (no data, status, ping or pong) is
dead even if TCP has not noticed; it is closed and replaced. The client pings
whenever the connection goes quiet, so a healthy server answers even when no
trades are due, and a read timeout over every frame catches the rest.

The API key is kept as a :class:`~pydantic.SecretStr` and scrubbed from
anything the server says before it is logged; it never appears in a log line,
an exception or a repr. The key goes in the first message, so a ``ws://`` URL
to another machine is refused at construction unless explicitly allowed
(:mod:`chronox_stream.sources.urls`).

Frames are read by :func:`parse_frame`, which raises nothing but
:class:`MalformedMessage`; a malformed frame is logged and skipped, the
connection stays up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, NoReturn

import aiohttp
import orjson
from pydantic import SecretStr

from chronox_stream.runtime import metrics
from chronox_stream.runtime.retry import Backoff
from chronox_stream.sources.urls import WS_URL, check_transport

log = logging.getLogger(__name__)

#: ``channel.symbol`` items per subscription message, so one frame stays a few kilobytes.
MAX_PARAMS = 500
#: How long closing a connection may wait for the server's close frame; a dead peer never sends it.
CLOSE_TIMEOUT_S = 2.0

#: Reconnects: at most 30 s apart, and the wait of the two refusals named above.
RECONNECT_BACKOFF = Backoff(initial_s=0.5, cap_s=30.0)

Action = Literal["subscribe", "unsubscribe"]


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    """The feed started (authenticated and subscribed) or stopped, why, and when (UTC)."""

    connected: bool
    reason: str
    at: datetime


class SubscriptionDiff(NamedTuple):
    subscribe: frozenset[str]
    unsubscribe: frozenset[str]


def subscription_diff(current: Set[str], wanted: Set[str]) -> SubscriptionDiff:
    """What to send to go from the ``current`` symbols to the ``wanted`` ones."""
    return SubscriptionDiff(frozenset(wanted - current), frozenset(current - wanted))


def subscription_messages(
    action: Action, channels: Iterable[str], symbols: Iterable[str], *, limit: int = MAX_PARAMS
) -> list[str]:
    """The JSON messages for every channel of every symbol, at most ``limit`` items each."""
    params = [f"{channel}.{symbol}" for symbol in sorted(symbols) for channel in channels]
    return [
        orjson.dumps({"action": action, "params": ",".join(params[i : i + limit])}).decode()
        for i in range(0, len(params), limit)
    ]


class MalformedMessage(ValueError):
    """A frame that is not a JSON array of objects, or holds a status event whose
    ``status`` or ``message`` is no string; says which, without echoing the frame."""


@dataclass(frozen=True, slots=True)
class Status:
    """A status event: ``auth_success``, ``auth_failed``, ``max_connections``, ..."""

    status: str
    message: str


@dataclass(frozen=True, slots=True)
class Frame:
    """One server message: its data events (every event but statuses) and its statuses,
    each in the order sent."""

    events: list[dict[str, Any]]
    statuses: list[Status]


def parse_frame(data: str | bytes) -> Frame:
    """Split a received frame into data events and statuses.

    Contract: whatever ``data`` holds, this returns a :class:`Frame` or raises
    :class:`MalformedMessage`, nothing else. Data events are passed on as
    they are: whether one is a valid trade is for the caller's tick parser
    to say (it dead-letters what it refuses).
    """
    try:
        events = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedMessage("not JSON") from None
    if not isinstance(events, list):
        raise MalformedMessage("not a JSON array")
    frame = Frame([], [])
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise MalformedMessage(f"event {i} is not a JSON object")
        if event.get("ev") != "status":
            frame.events.append(event)
            continue
        status, message = event.get("status"), event.get("message", "")
        if not isinstance(status, str) or not isinstance(message, str):
            raise MalformedMessage(f"status event {i} has a status or message that is no string")
        frame.statuses.append(Status(status, message))
    return frame


class _Lost(Exception):
    """The connection ended; ``at_cap`` when retrying soon cannot help."""

    def __init__(self, reason: str, *, at_cap: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at_cap = at_cap


class _CallbackFailed(Exception):
    """A caller's callback raised: ``run()`` ends with that error instead of reconnecting."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


#: Statuses after which Polygon closes the connection: do we wait the backoff's cap?
_FINAL_STATUSES = {
    "auth_failed": True,
    "max_connections": True,
    "auth_timeout": False,
    "force_disconnect": False,
}


class PolygonStream:
    """One WebSocket connection to Polygon, kept up and subscribed until cancelled."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        url: str,
        api_key: str,
        on_events: Callable[[list[dict[str, Any]]], Awaitable[None]],
        on_connection: Callable[[ConnectionChange], Awaitable[None]] | None = None,
        channels: tuple[str, ...] = ("T",),
        idle_timeout_s: float = 30.0,
        backoff: Backoff = RECONNECT_BACKOFF,
        allow_insecure: bool = False,
    ) -> None:
        """``UnsafeUrl`` if ``url`` is ``ws://`` to another machine and that is not allowed."""
        if idle_timeout_s <= 0:
            raise ValueError("idle_timeout_s must be > 0")
        check_transport(url, WS_URL, allow_insecure=allow_insecure)
        self._session = session
        self._url = url
        self._api_key = SecretStr(api_key)
        self._on_events = on_events
        self._on_connection = on_connection
        self._channels = channels
        self._idle_timeout_s = idle_timeout_s
        self._backoff = backoff
        self._rng = random.Random()
        self._wanted: frozenset[str] = frozenset()
        self._subscribed: frozenset[str] = frozenset()
        self._wanted_changed = asyncio.Event()
        self._connected = False
        self._authenticated_at: float | None = None  # loop time; None until auth_success
        self._data_seen = False

    def __repr__(self) -> str:
        return (
            f"PolygonStream(url={self._url!r}, channels={self._channels!r}, "
            f"symbols={len(self._wanted)}, connected={self._connected})"
        )

    @property
    def connected(self) -> bool:
        """Authenticated and subscribed: trades are flowing (or none are due)."""
        return self._connected

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Stream exactly these from now on: on the live connection at once, else on the next."""
        self._wanted = frozenset(symbols)
        self._wanted_changed.set()

    async def run(self) -> None:
        """Stay connected until cancelled; only a callback's exception ends it otherwise."""
        attempt = 0
        try:
            while True:
                lost = await self._connection()
                if self._connected:
                    self._connected = False
                    metrics.ws_connected(False)
                    await self._notify(False, lost.reason)
                if self._stayed_up():
                    attempt = 0
                if lost.at_cap:
                    delay = self._backoff.cap_s
                else:
                    delay = self._backoff.delay(attempt, self._rng)
                    attempt += 1
                log.warning(
                    "Polygon WebSocket lost (%s); reconnecting in %.2fs", lost.reason, delay
                )
                metrics.ws_reconnect()
                await asyncio.sleep(delay)
        finally:
            self._connected = False
            metrics.ws_connected(False)

    async def _connection(self) -> _Lost:
        """One connection from open to close; how it ended."""
        self._authenticated_at, self._data_seen = None, False
        self._subscribed = frozenset()
        try:
            # The opening handshake is bounded too: a black-holed server accepts TCP and then
            # says nothing.
            async with asyncio.timeout(self._idle_timeout_s):
                ws = await self._session.ws_connect(
                    self._url,
                    autoping=False,  # pongs must reach our reads, where they prove liveness
                    heartbeat=self._idle_timeout_s / 2,
                    timeout=aiohttp.ClientWSTimeout(
                        ws_close=min(CLOSE_TIMEOUT_S, self._idle_timeout_s)
                    ),
                )
            async with ws:
                await self._serve(ws)
        except _CallbackFailed as failed:
            raise failed.error from None
        except _Lost as lost:
            return lost
        except TimeoutError:
            return _Lost(f"no answer to the opening handshake within {self._idle_timeout_s:g}s")
        except (aiohttp.ClientError, OSError) as error:
            return _Lost(self._scrub(f"network error: {type(error).__name__}: {error}"))

    def _stayed_up(self) -> bool:
        """Whether the last connection worked well enough for the backoff to start over."""
        if self._authenticated_at is None:
            return False
        up_s = asyncio.get_running_loop().time() - self._authenticated_at
        return self._data_seen or up_s > self._backoff.cap_s

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> NoReturn:
        await ws.send_str(
            orjson.dumps({"action": "auth", "params": self._api_key.get_secret_value()}).decode()
        )
        while True:
            frame = await self._next_frame(ws)
            self._handle_statuses(frame.statuses)
            if any(s.status == "auth_success" for s in frame.statuses):
                break
        self._authenticated_at = asyncio.get_running_loop().time()
        await self._sync_subscriptions(ws)
        self._connected = True
        metrics.ws_connected(True)
        log.info(
            "Polygon WebSocket streaming %s for %d symbol(s)",
            ",".join(self._channels),
            len(self._subscribed),
        )
        await self._guarded(self._notify(True, "authenticated and subscribed"))
        follower = asyncio.create_task(self._follow_symbols(ws))
        try:
            while True:
                frame = await self._next_frame(ws)
                if frame.events:
                    self._data_seen = True
                    await self._guarded(self._on_events(frame.events))
                self._handle_statuses(frame.statuses)
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    async def _follow_symbols(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Send each change of the wanted symbols on the live connection, as it comes."""
        while True:
            await self._wanted_changed.wait()
            await self._sync_subscriptions(ws)

    async def _sync_subscriptions(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._wanted_changed.clear()
        diff = subscription_diff(self._subscribed, self._wanted)
        if diff.unsubscribe or diff.subscribe:
            log.info(
                "Polygon WebSocket subscriptions: +%d -%d symbol(s)",
                len(diff.subscribe),
                len(diff.unsubscribe),
            )
        for message in subscription_messages("unsubscribe", self._channels, diff.unsubscribe):
            await ws.send_str(message)
        self._subscribed -= diff.unsubscribe
        for message in subscription_messages("subscribe", self._channels, diff.subscribe):
            await ws.send_str(message)
        self._subscribed |= diff.subscribe

    async def _next_frame(self, ws: aiohttp.ClientWebSocketResponse) -> Frame:
        """The next server message; ``_Lost`` once the connection ends."""
        while True:
            try:
                message = await ws.receive(timeout=self._idle_timeout_s)
            except TimeoutError:
                raise self._silent() from None
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                return self._parse(message.data)
            if message.type is aiohttp.WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type is not aiohttp.WSMsgType.PONG:
                break
        # Closed: by the server, by the network, or by aiohttp's heartbeat when no pong came.
        error = message.data if message.type is aiohttp.WSMsgType.ERROR else ws.exception()
        if isinstance(error, aiohttp.ServerTimeoutError):
            raise self._silent()
        if error is not None:
            raise _Lost(self._scrub(f"connection error: {type(error).__name__}: {error}"))
        raise _Lost(f"closed by the server (code {ws.close_code})")

    def _silent(self) -> _Lost:
        log.warning(
            "Polygon WebSocket heard nothing (no data, status, ping or pong) within %gs: "
            "presumed dead",
            self._idle_timeout_s,
        )
        return _Lost(f"nothing heard within {self._idle_timeout_s:g}s")

    def _parse(self, data: str | bytes) -> Frame:
        try:
            return parse_frame(data)
        except MalformedMessage as error:
            log.warning(
                "Polygon WebSocket sent a malformed message (%s); ignored: %.200s",
                error,
                self._scrub(data if isinstance(data, str) else data.decode(errors="replace")),
            )
            return Frame([], [])

    def _handle_statuses(self, statuses: list[Status]) -> None:
        for status in statuses:
            self._on_status(status)

    def _on_status(self, event: Status) -> None:
        """Log a status in words an operator can act on; ``_Lost`` if the server is closing."""
        status = event.status
        message = self._scrub(event.message)[:500]
        if status == "auth_failed":
            log.error(
                "Polygon WebSocket refused the API key (auth_failed: %s): check "
                "CHRONOX_POLYGON_API_KEY and that the plan includes WebSocket data; "
                "retrying every %gs",
                message,
                self._backoff.cap_s,
            )
        elif status == "max_connections":
            log.warning(
                "Polygon WebSocket taken over (max_connections: %s): another client uses this "
                "API key, and a key holds one connection; waiting %gs before reconnecting so "
                "the two do not keep kicking each other off",
                message,
                self._backoff.cap_s,
            )
        elif status in _FINAL_STATUSES or status == "error":
            log.warning("Polygon WebSocket status %s: %s", status, message)
        elif status == "success":
            log.debug("Polygon WebSocket %s", message)
        else:
            log.info("Polygon WebSocket status %s: %s", self._scrub(status)[:100], message)
        if status in _FINAL_STATUSES:
            raise _Lost(status, at_cap=_FINAL_STATUSES[status])

    def _scrub(self, text: str) -> str:
        """``text`` without the key, should a server or library ever echo it."""
        key = self._api_key.get_secret_value()
        return text.replace(key, "***") if key else text

    @staticmethod
    async def _guarded(call: Awaitable[None]) -> None:
        """Await a callback whose errors must not pass for network errors (and a reconnect)."""
        try:
            await call
        except Exception as error:
            raise _CallbackFailed(error) from error

    async def _notify(self, connected: bool, reason: str) -> None:
        if self._on_connection is not None:
            await self._on_connection(ConnectionChange(connected, reason, datetime.now(UTC)))
