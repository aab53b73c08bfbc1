"""Polygon REST aggregates over aiohttp: pagination, retries, Retry-After.

The API key travels only in the ``Authorization`` header; ``next_url`` never
carries it, and no error raised here includes it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from pydantic import SecretStr

from chronox_stream.bars import Bar, ms_to_utc
from chronox_stream.timeframes import Timeframe

log = logging.getLogger(__name__)

#: Statuses the official client retries.
RETRY_STATUSES = frozenset({413, 429, 499, 500, 502, 503, 504})
PAGE_LIMIT = 50_000


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


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; ``attempts`` includes the first try."""

    attempts: int = 6
    base_s: float = 0.25
    cap_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


class PolygonRest:
    """Client of the aggregates endpoint for one base URL and key."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: SecretStr,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"}
        self._retry = retry or RetryPolicy()

    async def aggregates(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> AsyncIterator[list[Bar]]:
        """Yield pages of bars of ``[start, end]`` (both inclusive), oldest first."""
        url: str | None = (
            f"{self._base_url}/v2/aggs/ticker/{symbol}/range/{timeframe.multiplier}/"
            f"{timeframe.timespan}/{int(start.timestamp() * 1000)}/{int(end.timestamp() * 1000)}"
        )
        params: dict[str, str] | None = {
            "adjusted": "true",
            "sort": "asc",
            "limit": str(PAGE_LIMIT),
        }
        while url is not None:
            bars, url = await self._page(symbol, timeframe.name, url, params)
            params = None
            yield bars

    async def _page(
        self, symbol: str, tf: str, url: str, params: dict[str, str] | None
    ) -> tuple[list[Bar], str | None]:
        """One page of bars and the next page's URL, retrying transient faults."""
        for attempt in range(self._retry.attempts):
            try:
                body = await self._get_once(url, params)
                return [_bar(symbol, tf, row) for row in body.get("results") or ()], body.get(
                    "next_url"
                )
            except (KeyError, TypeError, ValueError) as exc:
                error: Exception = _Retryable(f"malformed bar in page: {exc!r}")
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
            if not isinstance(body.get("results", []), list):
                raise _Retryable("malformed aggregates page")
            return body


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _bar(symbol: str, tf: str, row: dict[str, Any]) -> Bar:
    return Bar(
        symbol=symbol,
        tf=tf,
        ts=ms_to_utc(int(row["t"])),
        open=float(row["o"]),
        high=float(row["h"]),
        low=float(row["l"]),
        close=float(row["c"]),
        volume=float(row["v"]),
        vwap=float(row["vw"]) if row.get("vw") is not None else None,
        transactions=int(row["n"]) if row.get("n") is not None else None,
    )
