"""``chronox serve``: the HTTP read API, its OpenAPI document and the live page.

Routes (``openapi.json`` describes the ``/v1`` ones, and a test validates every answer
against it):

- ``GET /v1/bars/{symbol}?tf=&start=&end=&adjusted=&limit=``: stored bars (``query``);
- ``GET /v1/symbols``: the registry; ``GET /v1/status``: ``chronox status`` and the
  dead-letter count (``status``);
- ``GET /v1/live/{symbol}?tf=``: server-sent events of the in-progress and closed bars
  (``live``);
- ``GET /v1/openapi.json``; ``GET /`` and ``/static/``: the live page.

Every query parameter is checked: an unknown one, or a value the read path refuses,
is answered ``400 {"reason", "message"}``; PostgreSQL or Kafka out of reach is ``503``
with a reason and no detail of the connection. The server listens on
``CHRONOX_SERVE_BIND:CHRONOX_SERVE_PORT``, loopback by default. Its pages load nothing
from elsewhere (a Content-Security-Policy says so to the browser).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka.errors import KafkaError

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.read import live
from chronox_stream.read.formats import bar_document
from chronox_stream.read.query import BarReader, StoreUnavailable, parse_query
from chronox_stream.read.status import status_source, symbols_source
from chronox_stream.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(str(files("chronox_stream.read")))
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
BAR_PARAMS = frozenset({"tf", "start", "end", "adjusted", "limit"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"reason": reason, "message": message}, status=status,
                             dumps=lambda doc: orjson.dumps(doc).decode())  # fmt: skip


def json_ok(doc: Any) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")


def _checked_params(request: web.Request, allowed: frozenset[str]) -> dict[str, str]:
    """The query's parameters, each given once and known; ``Rejected`` otherwise."""
    params: dict[str, str] = {}
    for key, value in request.query.items():
        if key not in allowed:
            raise Rejected("unknown_field", f"unknown parameter {key[:40]!r}")
        if key in params:
            raise Rejected("invalid_value", f"parameter {key!r} is given twice")
        params[key] = value
    return params


def _flag(params: dict[str, str], key: str) -> bool:
    value = params.get(key, "false")
    if value not in ("true", "false"):
        raise Rejected("invalid_value", f"{key} must be true or false")
    return value == "true"


def _count(params: dict[str, str], key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise Rejected("invalid_value", f"{key} must be a whole number")
    return int(value)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; refusals and unreachable stores as JSON."""
    try:
        response = await handler(request)
    except Rejected as rejected:
        response = refusal(400, rejected.reason, rejected.message)
    except StoreUnavailable as down:
        response = refusal(503, "store_unavailable", str(down))
    except (OSError, TimeoutError, KafkaError, aioredis.RedisError) as error:
        log.warning("%s %s: %s", request.method, request.path, type(error).__name__)
        response = refusal(503, "service_unavailable", f"a store did not answer "
                                                        f"({type(error).__name__})")  # fmt: skip
    except web.HTTPException as error:
        error.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


class ReadApi:
    """The handlers, with the connections they share (opened at start, closed at cleanup)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = status_source(settings)
        self.symbols = symbols_source(settings)
        self.reader: BarReader | None = None
        self._opening = asyncio.Lock()
        self.redis = aioredis.from_url(settings.redis_url.get_secret_value(),
                                       socket_timeout=None,
                                       socket_connect_timeout=settings.redis_timeout_s)  # fmt: skip
        self.live_slots = asyncio.Semaphore(settings.serve_max_live)

    async def _reader(self) -> BarReader:
        """The pool, opened on first use (once), so the server starts while PostgreSQL is
        down and a failed open is tried again by the next request."""
        async with self._opening:
            if self.reader is None:
                self.reader = await BarReader.connect(self.settings)
        return self.reader

    async def bars(self, request: web.Request) -> web.Response:
        params = _checked_params(request, BAR_PARAMS)
        query = parse_query(
            [request.match_info["symbol"]], params.get("tf", "1m"), params.get("start"),
            params.get("end"), now=datetime.now(UTC), adjusted=_flag(params, "adjusted"),
            latest=_count(params, "limit"), max_rows=self.settings.read_max_rows,
        )  # fmt: skip
        rows = await (await self._reader()).bars(query)
        return json_ok({"symbol": query.symbols[0], "tf": query.tf, "adjusted": query.adjusted,
                        "bars": [bar_document(row) for row in rows]})  # fmt: skip

    async def symbols_list(self, request: web.Request) -> web.Response:
        _checked_params(request, frozenset())
        return json_ok(await self.symbols.get())

    async def status_report(self, request: web.Request) -> web.Response:
        _checked_params(request, frozenset())
        return json_ok(await self.status.get())

    async def live_bars(self, request: web.Request) -> web.StreamResponse:
        params = _checked_params(request, frozenset({"tf"}))
        query = parse_query([request.match_info["symbol"]], params.get("tf", "1m"), None, None,
                            now=datetime.now(UTC), max_rows=1)  # fmt: skip
        if self.live_slots.locked():
            return refusal(503, "too_many_streams",
                           f"{self.settings.serve_max_live} live streams are open")  # fmt: skip
        async with self.live_slots:
            return await live.stream(request, self.redis, self.settings.redis_prefix,
                                     query.symbols[0], query.tf)  # fmt: skip

    async def close(self, _app: web.Application) -> None:
        if self.reader is not None:
            await self.reader.close()
        await self.redis.aclose()


def _file(name: str, content_type: str) -> Handler:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=(HERE / name).read_bytes(), content_type=content_type)

    return handler


def build_app(settings: Settings) -> web.Application:
    api = ReadApi(settings)
    app = web.Application(middlewares=[guard])
    app.router.add_get("/", _file("static/index.html", "text/html"))
    app.router.add_get("/v1/openapi.json", _file("openapi.json", "application/json"))
    app.router.add_get("/v1/bars/{symbol}", api.bars)
    app.router.add_get("/v1/symbols", api.symbols_list)
    app.router.add_get("/v1/status", api.status_report)
    app.router.add_get("/v1/live/{symbol}", api.live_bars)
    app.router.add_static("/static/", HERE / "static", show_index=False, follow_symlinks=False)
    app.on_cleanup.append(api.close)
    return app


async def serve(settings: Settings) -> None:
    """Serve until cancelled. Handlers whose client disconnected are cancelled, so a live
    stream ends as its page closes."""
    runner = web.AppRunner(build_app(settings), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.serve_bind, settings.serve_port)
    await site.start()
    log.info("serving on http://%s:%d", settings.serve_bind, settings.serve_port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
