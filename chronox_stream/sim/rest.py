"""Polygon's stocks REST endpoints over aiohttp, served from the market as of sim-now.

``/v2/aggs`` parses Polygon's path and query (``from``/``to`` as ``YYYY-MM-DD``
— a New York calendar day — or epoch ms, both inclusive), pages with
:func:`~chronox_stream.sim.pages.aggregate_page` and links the next page by
``next_url``: the same path with ``from`` (ascending) or ``to`` (descending)
moved to the next bar's ms timestamp and an opaque ``cursor`` holding the
query (``limit``, ``sort``, ``adjusted``), never the key. The page-size knob
caps ``limit``; the malformed knob truncates the body. Bar computation runs in
a worker thread so that WebSocket feeds keep their pace. ``adjusted=true``
(the default, as Polygon's) serves split-adjusted bars (see
:mod:`~chronox_stream.sim.adjusted`), ``adjusted=false`` the unadjusted ones the
flat files hold; ``/prev`` takes the same flag. ``/v3/reference/splits`` lists
the market's splits (:mod:`~chronox_stream.sim.reference`).
"""

from __future__ import annotations

import asyncio
import base64
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from aiohttp import web

from chronox_stream.sim import views
from chronox_stream.sim.adjusted import adjusted_json
from chronox_stream.sim.aggregate import TIMESPANS
from chronox_stream.sim.clock import SimClock
from chronox_stream.sim.gate import REQUEST_ID, error_response, json_response
from chronox_stream.sim.knobs import KnobBoard
from chronox_stream.sim.market import Market
from chronox_stream.sim.pages import AggQuery, Page, aggregate_page
from chronox_stream.sim.reference import BadQuery, list_splits
from chronox_stream.sim.sessions import ny_midnight_ns

DEFAULT_LIMIT = 5000
MAX_LIMIT = 50_000


class BadRequest(ValueError):
    """A request Polygon would answer with 400; the message is safe to return."""


def encode_cursor(params: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(urlencode(params).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        return dict(parse_qsl(raw, strict_parsing=True))
    except ValueError:
        raise BadRequest("Invalid cursor") from None


def parse_instant(raw: str, *, end_of_day: bool) -> int:
    """Epoch ns of a path ``from``/``to``: epoch ms, or a New York day (its end for ``to``)."""
    if raw.isdigit():
        return int(raw) * 1_000_000
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"Could not parse the time parameter: '{raw}'") from None
    if end_of_day:
        return ny_midnight_ns(day + timedelta(days=1)) - 1
    return ny_midnight_ns(day)


def _flag(params: dict[str, str], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise BadRequest(f"Invalid {name}: must be true or false")
    return value.lower() == "true"


def _limit(params: dict[str, str], page_size: int | None) -> int:
    raw = params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit():
        raise BadRequest("Invalid limit: must be a positive integer")
    limit = min(max(int(raw), 1), MAX_LIMIT)
    return min(limit, page_size) if page_size is not None else limit


class PolygonRest:
    """Handlers of one simulator; see the module doc."""

    def __init__(self, market: Market, clock: SimClock, board: KnobBoard) -> None:
        self._market = market
        self._clock = clock
        self._board = board

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(
                "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{start}/{end}",
                self.aggregates,
            ),
            web.get("/v2/aggs/ticker/{ticker}/prev", self.previous_close),
            web.get("/v2/snapshot/locale/us/markets/stocks/tickers/{ticker}", self.snapshot),
            web.get("/v1/open-close/{ticker}/{date}", self.open_close),
            web.get("/v1/marketstatus/now", self.market_now),
            web.get("/v1/marketstatus/upcoming", self.market_upcoming),
            web.get("/v3/reference/splits", self.splits),
        ]

    async def aggregates(self, request: web.Request) -> web.Response:
        request_id = request[REQUEST_ID]
        try:
            query, params = self._query(request)
        except BadRequest as exc:
            return error_response(request_id, 400, str(exc))
        adjusted = params["adjusted"] == "true"
        page, results = await asyncio.to_thread(self._page, query, adjusted)
        body: dict[str, Any] = {
            "ticker": query.symbol,
            "queryCount": page.query_count,
            "resultsCount": len(page.bars),
            "adjusted": adjusted,
        }
        if results:
            body["results"] = results
        body["status"], body["request_id"] = "OK", request_id
        if page.resume_ns is not None:
            body["next_url"] = _next_url(request, page.resume_ns, query.descending, params)
        raw = orjson.dumps(body)
        if self._board.take_malformed():
            raw = raw[: len(raw) // 2]
        return web.Response(body=raw, content_type="application/json")

    def _page(self, query: AggQuery, adjusted: bool) -> tuple[Page, list[dict[str, Any]]]:
        now = self._clock.now_ns()
        page = aggregate_page(self._market, query, now)
        if not adjusted:
            return page, [views.bar_json(bar) for bar in page.bars]
        results = [
            adjusted_json(self._market, query.symbol, query.timespan, bar, now)
            for bar in page.bars
        ]
        return page, results

    def _query(self, request: web.Request) -> tuple[AggQuery, dict[str, str]]:
        match = request.match_info
        given = dict(request.query)
        params = decode_cursor(given["cursor"]) if "cursor" in given else given
        if not match["multiplier"].isdigit() or int(match["multiplier"]) < 1:
            raise BadRequest("Invalid multiplier: must be a positive integer")
        timespan = match["timespan"]
        if timespan not in TIMESPANS:
            raise BadRequest(f"Invalid timespan: {timespan!r}")
        sort = params.get("sort", "asc")
        if sort not in ("asc", "desc"):
            raise BadRequest("Invalid sort: must be asc or desc")
        adjusted = _flag(params, "adjusted", True)
        limit = _limit(params, self._board.current.page_size)
        query = AggQuery(
            symbol=match["ticker"],
            multiplier=int(match["multiplier"]),
            timespan=timespan,
            from_ns=parse_instant(match["start"], end_of_day=False),
            to_ns=parse_instant(match["end"], end_of_day=True),
            limit=limit,
            descending=sort == "desc",
        )
        canonical = {"limit": str(limit), "sort": sort, "adjusted": str(adjusted).lower()}
        return query, canonical

    async def previous_close(self, request: web.Request) -> web.Response:
        try:
            adjusted = _flag(dict(request.query), "adjusted", True)
        except BadRequest as exc:
            return error_response(request[REQUEST_ID], 400, str(exc))
        symbol, now = request.match_info["ticker"], self._clock.now_ns()
        body = await asyncio.to_thread(views.previous_close, self._market, symbol, now, adjusted)
        return json_response({**body, "request_id": request[REQUEST_ID]})

    async def splits(self, request: web.Request) -> web.Response:
        request_id = request[REQUEST_ID]
        given = dict(request.query)
        try:
            params = decode_cursor(given["cursor"]) if "cursor" in given else given
            page = list_splits(self._market.splits, params)
        except (BadRequest, BadQuery) as exc:
            return error_response(request_id, 400, str(exc))
        body: dict[str, Any] = {"results": page.results, "status": "OK", "request_id": request_id}
        if page.next_params is not None:
            cursor = encode_cursor(page.next_params)
            body["next_url"] = f"{request.scheme}://{request.host}/v3/reference/splits?cursor={cursor}"
        return json_response(body)

    async def snapshot(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(
            views.snapshot, self._market, request.match_info["ticker"], self._clock.now_ns()
        )
        return json_response({**body, "request_id": request[REQUEST_ID]})

    async def open_close(self, request: web.Request) -> web.Response:
        request_id = request[REQUEST_ID]
        try:
            day = date.fromisoformat(request.match_info["date"])
        except ValueError:
            return error_response(request_id, 400, "Invalid date: expected YYYY-MM-DD")
        body = await asyncio.to_thread(
            views.open_close, self._market, request.match_info["ticker"], day, self._clock.now_ns()
        )
        if body is None:
            return error_response(request_id, 404, "Data not found.")
        return json_response(body)

    async def market_now(self, request: web.Request) -> web.Response:
        return json_response(views.market_now(self._clock.now_ns()))

    async def market_upcoming(self, request: web.Request) -> web.Response:
        return json_response(views.market_upcoming(self._clock.now_ns()))


def _next_url(
    request: web.Request, resume_ns: int, descending: bool, params: dict[str, str]
) -> str:
    match = request.match_info
    resume_ms = str(resume_ns // 1_000_000)
    start, end = (match["start"], resume_ms) if descending else (resume_ms, match["end"])
    path = (
        f"/v2/aggs/ticker/{match['ticker']}/range/{match['multiplier']}/{match['timespan']}"
        f"/{start}/{end}"
    )
    return f"{request.scheme}://{request.host}{path}?cursor={encode_cursor(params)}"
