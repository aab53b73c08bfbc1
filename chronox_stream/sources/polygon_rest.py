"""Polygon REST over aiohttp: aggregates (paginated), snapshot, previous close.

Transient faults (the statuses the official client retries, timeouts, broken
connections, malformed bodies) are retried with exponential backoff and full
jitter; a 429's ``Retry-After`` is honoured. The API key travels only in the
``Authorization`` header; ``next_url`` never carries it and no error here
includes it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import aiohttp
import orjson
from pydantic import SecretStr

from chronox_stream.bars import Bar, ms_to_utc
from chronox_stream.timeframes import TIMEFRAMES, Timeframe
from chronox_stream.windows import window_start

log = logging.getLogger(__name__)

#: Statuses the official client retries.
RETRY_STATUSES = frozenset({413, 429, 499, 500, 502, 503, 504})
PAGE_LIMIT = 50_000
T = TypeVar("T")


class PolygonError(RuntimeError):
    """A request that failed for good: status and Polygon's own message, never the key."""

    def __init__(self, status: int | None, message: str) -> None:
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"Polygon REST request failed ({where}): {message}")
        self.status = status


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class RateLimiter(Protocol):
    async def acquire(self) -> None:
        """Wait until one more request may be sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; ``attempts`` includes the first try."""

    attempts: int = 6
    base_s: float = 0.25
    cap_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The single-ticker snapshot's current minute bar and day bar (either may be absent)."""

    minute: Bar | None
    day: Bar | None


class PolygonRest:
    """Client of one base URL with one key."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: SecretStr,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"}
        self._retry = retry or RetryPolicy()
        self._limiter = limiter

    async def aggregates(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> AsyncIterator[list[Bar]]:
        """Yield pages of bars whose window starts in ``[start, end]``, oldest first."""
        url: str | None = (
            f"{self._base_url}/v2/aggs/ticker/{symbol}/range/{timeframe.multiplier}/"
            f"{timeframe.timespan}/{_ms(start)}/{_ms(end)}"
        )
        params: dict[str, str] | None = {
            "adjusted": "true",
            "sort": "asc",
            "limit": str(PAGE_LIMIT),
        }
        while url is not None:
            bars, url = await self._request(
                url, params, lambda body: _aggregates_page(symbol, timeframe.name, body)
            )
            params = None
            yield bars

    async def snapshot(self, symbol: str) -> Snapshot:
        """``/v2/snapshot/locale/us/markets/stocks/tickers/{T}``: current minute and day bars."""
        url = f"{self._base_url}/v2/snapshot/locale/us/markets/stocks/tickers/{symbol}"
        return await self._request(url, None, lambda body: _snapshot(symbol, body))

    async def previous_close(self, symbol: str) -> Bar | None:
        """``/v2/aggs/ticker/{T}/prev``: the previous session's day bar."""
        url = f"{self._base_url}/v2/aggs/ticker/{symbol}/prev"
        bars, _ = await self._request(url, None, lambda body: _aggregates_page(symbol, "1d", body))
        return bars[-1] if bars else None

    async def _request(
        self, url: str, params: dict[str, str] | None, parse: Callable[[dict[str, Any]], T]
    ) -> T:
        """GET and parse one body, retrying transient faults and malformed bodies."""
        for attempt in range(self._retry.attempts):
            try:
                return parse(await self._get_once(url, params))
            except (KeyError, TypeError, ValueError) as exc:
                error: Exception = _Retryable(f"malformed body: {exc!r}")
            except (TimeoutError, _Retryable, aiohttp.ClientError) as exc:
                error = exc
            if attempt + 1 == self._retry.attempts:
                raise PolygonError(None, f"gave up after {attempt + 1} attempts: {error}")
            retry_after = error.retry_after if isinstance(error, _Retryable) else None
            delay = retry_after if retry_after is not None else self._retry.delay(attempt)
            log.warning("REST retry %d in %.2fs: %s", attempt + 1, delay, error)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _get_once(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        if self._limiter is not None:
            await self._limiter.acquire()
        async with self._session.get(url, params=params, headers=self._headers) as resp:
            raw = await resp.read()
            if resp.status in RETRY_STATUSES:
                raise _Retryable(f"HTTP {resp.status}", _retry_after(resp.headers))
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _Retryable(f"malformed body (HTTP {resp.status})") from None
            if not isinstance(body, dict):
                raise _Retryable(f"malformed body (HTTP {resp.status})")
            if resp.status != 200:
                message = body.get("error") or body.get("message") or "request failed"
                raise PolygonError(resp.status, str(message))
            return body


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _aggregates_page(symbol: str, tf: str, body: dict[str, Any]) -> tuple[list[Bar], str | None]:
    rows = body.get("results") or []
    if not isinstance(rows, list):
        raise TypeError("results is not a list")
    return [_bar(symbol, tf, row, int(row["t"])) for row in rows], body.get("next_url")


def _snapshot(symbol: str, body: dict[str, Any]) -> Snapshot:
    ticker = body["ticker"]
    minute = ticker.get("min") or {}
    day = ticker.get("day") or {}
    minute_bar = _bar(symbol, "1m", minute, int(minute["t"])) if minute.get("t") else None
    day_bar = None
    if day.get("o") and ticker.get("updated"):
        updated = ms_to_utc(int(ticker["updated"]) // 1_000_000)
        start = window_start(updated, TIMEFRAMES["1d"])
        day_bar = _bar(symbol, "1d", day, _ms(start))
    return Snapshot(minute_bar, day_bar)


def _bar(symbol: str, tf: str, row: dict[str, Any], t_ms: int) -> Bar:
    return Bar(
        symbol=symbol,
        tf=tf,
        ts=ms_to_utc(t_ms),
        open=float(row["o"]),
        high=float(row["h"]),
        low=float(row["l"]),
        close=float(row["c"]),
        volume=float(row["v"]),
        vwap=float(row["vw"]) if row.get("vw") is not None else None,
        transactions=int(row["n"]) if row.get("n") is not None else None,
    )


async def collect(pages: AsyncIterator[list[Bar]]) -> list[Bar]:
    """Every bar of a paginated query."""
    return [bar async for page in pages for bar in page]
