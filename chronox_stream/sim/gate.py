"""What stands before every Polygon REST handler: auth, rate limit, injected faults, entitlements.

Checks run in Polygon's order: the key (401), then the key's request rate
(429 with ``Retry-After``), then injected 5xx, then the ticker's entitlement
(403). Error bodies are Polygon's, byte for byte in shape (FORMATS.md); none
of them quotes the key. ``/_sim`` admin paths and the WebSocket pass through.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from hashlib import blake2b
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from chronox_stream.sim.knobs import KnobBoard, Knobs

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
NOT_PROVIDED = "API Key was not provided"
UNKNOWN_KEY = "Unknown API Key"
RATE_LIMITED = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your "
    "subscription to continue. https://polygon.io/pricing"
)
NOT_ENTITLED = (
    "You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing"
)


class RequestIds:
    """Polygon-looking request ids (32 hex digits), a deterministic sequence per seed."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._count = 0

    def next(self) -> str:
        self._count += 1
        return blake2b(f"{self._seed}:{self._count}".encode(), digest_size=16).hexdigest()


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(
    request_id: str, status: int, text: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Polygon's error body: ``error`` for most statuses, ``message`` for 403/404."""
    if status == 403:
        body = {"status": "NOT_AUTHORIZED", "request_id": request_id, "message": text}
    elif status == 404:
        body = {"status": "NOT_FOUND", "request_id": request_id, "message": text}
    else:
        body = {"status": "ERROR", "request_id": request_id, "error": text}
    return json_response(body, status, headers)


def presented_key(request: web.Request) -> str | None:
    """The key of a request: ``Authorization: Bearer KEY`` first, then ``apiKey=KEY``."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer ") and auth[7:].strip():
        return auth[7:].strip()
    return request.query.get("apiKey") or None


def key_accepted(required: str, presented: str | None) -> bool:
    """Any key (or none) when none is required; else exactly the required one."""
    if not required:
        return True
    return presented is not None and hmac.compare_digest(required, presented)


class RateLimiter:
    """Sliding window per key, in real time (what a client's budget is about): a minute, as
    Polygon's, or shorter (knob ``rate_window_s``) for a test that must see a 429 waited out.

    Setting a new limit or window starts a fresh budget: requests made under the old
    one (or while there was none) do not count against the new one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def admit(self, key: str, per_window: int, window_s: int = 60) -> int | None:
        """``None`` if the request may go, else the seconds to wait (``Retry-After``)."""
        if per_window <= 0:
            return None
        now = self._clock()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - window_s:
            seen.popleft()
        if len(seen) >= per_window:
            return max(1, math.ceil(seen[0] + window_s - now))
        seen.append(now)
        return None

    async def on_knobs(self, old: Knobs, new: Knobs) -> None:
        """Knob listener: forget the history when the limit or its window changes."""
        if (old.rate_limit, old.rate_window_s) != (new.rate_limit, new.rate_window_s):
            self._seen.clear()


class RequestLog:
    """The REST requests served, in order (the latest 10,000): path and query, without the
    ``apiKey`` parameter, so tests can count what a client fetched."""

    def __init__(self, size: int = 10_000) -> None:
        self._entries: deque[dict[str, str]] = deque(maxlen=size)

    def record(self, request: web.Request) -> None:
        query = "&".join(f"{k}={v}" for k, v in request.query.items() if k != "apiKey")
        self._entries.append({"method": request.method, "path": request.path, "query": query})

    def entries(self) -> list[dict[str, str]]:
        return list(self._entries)


def polygon_gate(
    board: KnobBoard, ids: RequestIds, limiter: RateLimiter, log: RequestLog
) -> Middleware:
    """aiohttp middleware applying the checks above to ``/v1``, ``/v2`` and ``/v3`` paths (each
    recorded in ``log``)."""

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(("/v1/", "/v2/", "/v3/")):
            return await handler(request)
        log.record(request)
        request_id = ids.next()
        request[REQUEST_ID] = request_id
        knobs = board.current
        key = presented_key(request)
        if not key_accepted(knobs.api_key, key):
            return error_response(request_id, 401, UNKNOWN_KEY if key else NOT_PROVIDED)
        wait = limiter.admit(key or "", knobs.rate_limit, knobs.rate_window_s)
        if wait is not None:
            return error_response(request_id, 429, RATE_LIMITED, {"Retry-After": str(wait)})
        failure = board.take_failure()
        if failure is not None:
            return error_response(request_id, failure, HTTPStatus(failure).phrase)
        ticker = request.match_info.get("ticker", "")
        if ticker and ticker.upper() in board.current.forbidden_tickers:
            return error_response(request_id, 403, NOT_ENTITLED)
        return await handler(request)

    return gate
