"""The simulator's own admin endpoints under ``/_sim`` (no auth: it listens on loopback).

- ``GET /_sim/knobs`` the knobs (never the key); ``POST /_sim/knobs`` a JSON
  object of knobs to change; ``POST /_sim/knobs/reset`` back to the startup knobs;
- ``GET /_sim/clock`` sim-now and speed; ``POST /_sim/clock`` ``{"now": ISO-8601,
  "speed": x}`` (either) to move or re-pace it; the flat-file bucket follows at
  once (days published by the new sim-now appear, later ones go);
- ``POST /_sim/ws/disconnect`` closes every WebSocket (``force_disconnect``);
- ``GET /_sim/info`` seed, symbol universe, flat-file days in the bucket, and the
  market's splits (``[{ticker, execution_date, split_from, split_to}]``);
- ``GET /_sim/requests`` the REST requests served, in order (``{"requests": [{"method",
  "path", "query"}]}``, the key left out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from chronox_stream.sim.clock import SimClock
from chronox_stream.sim.gate import RequestLog, json_response
from chronox_stream.sim.knobs import KnobBoard
from chronox_stream.sim.sessions import from_ns, to_ns
from chronox_stream.sim.ws import WsHub


def parse_moment(raw: object) -> int:
    """Epoch ns of an ISO-8601 instant with a zone (``Z`` allowed)."""
    if not isinstance(raw, str):
        raise ValueError("now must be an ISO-8601 string")
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{raw!r} has no time zone")
    return to_ns(moment)


def _bad(message: str) -> web.Response:
    return json_response({"error": message}, 400)


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = orjson.loads(await request.read() or b"{}")
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


class Admin:
    def __init__(
        self,
        board: KnobBoard,
        clock: SimClock,
        hub: WsHub,
        info: Callable[[], dict[str, Any]],
        on_clock: Callable[[], Awaitable[None]],
        requests: RequestLog,
    ) -> None:
        self._board = board
        self._clock = clock
        self._hub = hub
        self._info = info
        self._on_clock = on_clock
        self._requests = requests

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/knobs", self.get_knobs),
            web.post("/_sim/knobs", self.set_knobs),
            web.post("/_sim/knobs/reset", self.reset_knobs),
            web.get("/_sim/clock", self.get_clock),
            web.post("/_sim/clock", self.set_clock),
            web.post("/_sim/ws/disconnect", self.disconnect),
            web.get("/_sim/info", self.get_info),
            web.get("/_sim/requests", self.get_requests),
        ]

    async def get_knobs(self, request: web.Request) -> web.Response:
        return json_response(self._board.current.public())

    async def set_knobs(self, request: web.Request) -> web.Response:
        try:
            knobs = await self._board.update(await _json_object(request))
        except ValueError as exc:  # also orjson.JSONDecodeError
            return _bad(str(exc))
        return json_response(knobs.public())

    async def reset_knobs(self, request: web.Request) -> web.Response:
        return json_response((await self._board.reset()).public())

    def _clock_view(self) -> dict[str, Any]:
        now = self._clock.now_ns()
        return {"now": from_ns(now).isoformat(), "now_ns": now, "speed": self._clock.speed}

    async def get_clock(self, request: web.Request) -> web.Response:
        return json_response(self._clock_view())

    async def set_clock(self, request: web.Request) -> web.Response:
        try:
            body = await _json_object(request)
            now = parse_moment(body["now"]) if "now" in body else None
            speed = body.get("speed")
            if speed is not None and (
                isinstance(speed, bool) or not isinstance(speed, int | float)
            ):
                raise ValueError("speed must be a number")
            self._clock.set(now_ns=now, speed=float(speed) if speed is not None else None)
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        await self._on_clock()
        return json_response(self._clock_view())

    async def disconnect(self, request: web.Request) -> web.Response:
        return json_response({"disconnected": await self._hub.disconnect_all()})

    async def get_info(self, request: web.Request) -> web.Response:
        return json_response(self._info())

    async def get_requests(self, request: web.Request) -> web.Response:
        return json_response({"requests": self._requests.entries()})
