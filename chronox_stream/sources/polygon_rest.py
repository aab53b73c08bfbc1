"""Polygon REST over aiohttp: aggregates and splits (paginated), snapshot, previous close.

Bars are asked for unadjusted (``adjusted=false``): every source the pipeline
stores is raw, as traded, like the flat files and the WebSocket (the README's
adjustment policy); split adjustment happens on read.

Transient faults (the statuses the official client retries, timeouts, broken
connections, malformed bodies) are retried with exponential backoff and full
jitter (:class:`~chronox_stream.runtime.retry.Backoff`); a ``Retry-After`` sent
with such a status is honoured up to a cap.

What the client refuses, each time with a :class:`PolygonError` that says why
rather than a hang:

- The API key travels only in the ``Authorization`` header, and only to the
  base URL's origin (scheme, host, port). A ``next_url`` that leads anywhere
  else fails the query with :class:`ForeignNextUrl`, which names that origin
  but neither the key nor the link's path or query; redirects are never
  followed. A plain-text base URL to another machine is refused at
  construction (:mod:`chronox_stream.sources.urls`).
- One query follows at most ``RestLimits.max_pages`` pages, and a
  ``next_url`` to a page it already fetched is a loop.
- A body is read up to ``RestLimits.max_body_bytes`` (after decompression),
  never further.
- ``Retry-After`` (seconds or an HTTP date) waits at most
  ``RetryPolicy.retry_after_cap_s``; a value that is not a time falls back to
  the backoff.

Bodies become bars in :mod:`chronox_stream.sources.polygon_pages`. No error
here includes the key: messages a server sends back are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar
from urllib.parse import urlencode

import aiohttp
import orjson
from pydantic import SecretStr
from yarl import URL

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.splits import SplitRecord, parse_splits_page
from chronox_stream.domain.timeframes import Timeframe
from chronox_stream.runtime import metrics
from chronox_stream.runtime.retry import Backoff
from chronox_stream.sources.polygon_pages import (
    MalformedPage,
    Snapshot,
    parse_aggregates_page,
    parse_snapshot,
)
from chronox_stream.sources.urls import REST_URL, Origin, check_transport, origin

log = logging.getLogger(__name__)

#: Statuses the official client retries.
RETRY_STATUSES = frozenset({413, 429, 499, 500, 502, 503, 504})
PAGE_LIMIT = 50_000
READ_CHUNK = 64 * 1024
SPLITS_PAGE_LIMIT = 1000
T = TypeVar("T")


class _Paged(Protocol):
    @property
    def next_url(self) -> str | None: ...


P = TypeVar("P", bound=_Paged)


class PolygonError(RuntimeError):
    """A request that failed for good: the cause and the HTTP status if one was final, never
    the key."""

    def __init__(self, status: int | None, message: str) -> None:
        where = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"Polygon REST request failed{where}: {message}")
        self.status = status


class ForeignNextUrl(PolygonError):
    """A ``next_url`` leading away from the base URL's origin: not followed."""

    def __init__(self, foreign: Origin, home: Origin) -> None:
        super().__init__(
            None,
            f"next_url leads to {foreign}, another origin than the base URL's ({home}); "
            "not followed, as the API key is sent only to the base URL",
        )
        self.foreign = foreign


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class RateLimiter(Protocol):
    async def acquire(self) -> None:
        """Wait until one more request may be sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; ``attempts`` includes the first try.

    A server's ``Retry-After`` replaces the backoff, but never waits longer
    than ``retry_after_cap_s``.
    """

    attempts: int = 6
    base_s: float = 0.25
    cap_s: float = 10.0
    retry_after_cap_s: float = 60.0

    def __post_init__(self) -> None:
        Backoff(initial_s=self.base_s, cap_s=self.cap_s)  # ValueError now, not at a retry

    def delay(self, attempt: int) -> float:
        return Backoff(initial_s=self.base_s, cap_s=self.cap_s).delay(attempt)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestLimits:
    """How much one query may fetch: pages per pagination run, bytes per body."""

    max_pages: int = 10_000
    max_body_bytes: int = 64 * 1024 * 1024


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
        limits: RestLimits | None = None,
        allow_insecure: bool = False,
    ) -> None:
        """``UnsafeUrl`` if ``base_url`` is plain text to another machine (unless allowed)."""
        self._origin = check_transport(base_url, REST_URL, allow_insecure=allow_insecure)
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._key = api_key
        self._headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"}
        self._retry = retry or RetryPolicy()
        self._limits = limits or RestLimits()
        self._limiter = limiter

    async def aggregates(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> AsyncIterator[list[Bar]]:
        """Yield pages of bars whose window starts in ``[start, end]``, oldest first.

        Each ``next_url`` is checked before its page is yielded: a foreign
        origin, a loop or one page too many fails the query.
        """
        query = urlencode({"adjusted": "false", "sort": "asc", "limit": str(PAGE_LIMIT)})
        url = URL(
            f"{self._base_url}/v2/aggs/ticker/{symbol}/range/{timeframe.multiplier}/"
            f"{timeframe.timespan}/{_ms(start)}/{_ms(end)}?{query}"
        )
        pages = self._pages(url, lambda raw: parse_aggregates_page(symbol, timeframe.name, raw))
        async for page in pages:
            yield page.bars

    async def splits(self, symbol: str) -> tuple[list[SplitRecord], list[str]]:
        """``/v3/reference/splits`` of ``symbol``, every page: the valid records and the
        reasons of the skipped ones (see :mod:`chronox_stream.domain.splits`)."""
        query = urlencode({"ticker": symbol, "sort": "execution_date", "order": "asc",
                           "limit": str(SPLITS_PAGE_LIMIT)})  # fmt: skip
        url = URL(f"{self._base_url}/v3/reference/splits?{query}")
        records: list[SplitRecord] = []
        skipped: list[str] = []
        async for page in self._pages(url, lambda raw: parse_splits_page(symbol, raw)):
            records.extend(page.records)
            skipped.extend(page.skipped)
        return records, skipped

    async def _pages(self, url: URL, parse: Callable[[bytes], P]) -> AsyncIterator[P]:
        """Each page of a paginated query, following ``next_url`` under the module's rules."""
        fetched = {_page_key(url)}
        while True:
            page = await self._request(url, parse)
            if page.next_url is None:
                yield page
                return
            url = follow_next_url(url, page.next_url, self._origin)
            if _page_key(url) in fetched:
                raise PolygonError(
                    None, "next_url points at a page this query already fetched (a loop)"
                )
            if len(fetched) >= self._limits.max_pages:
                raise PolygonError(
                    None,
                    f"more than {self._limits.max_pages} pages in one query "
                    "(CHRONOX_REST_MAX_PAGES); stopped",
                )
            fetched.add(_page_key(url))
            yield page

    async def snapshot(self, symbol: str) -> Snapshot:
        """``/v2/snapshot/locale/us/markets/stocks/tickers/{T}``: current minute and day bars."""
        url = URL(f"{self._base_url}/v2/snapshot/locale/us/markets/stocks/tickers/{symbol}")
        return await self._request(url, lambda raw: parse_snapshot(symbol, raw))

    async def previous_close(self, symbol: str) -> Bar | None:
        """``/v2/aggs/ticker/{T}/prev``: the previous session's day bar, unadjusted."""
        url = URL(f"{self._base_url}/v2/aggs/ticker/{symbol}/prev?adjusted=false")
        page = await self._request(url, lambda raw: parse_aggregates_page(symbol, "1d", raw))
        return page.bars[-1] if page.bars else None

    async def _request(self, url: URL, parse: Callable[[bytes], T]) -> T:
        """GET and parse one body, retrying transient faults and malformed bodies."""
        for attempt in range(self._retry.attempts):
            try:
                return parse(await self._get_once(url))
            except MalformedPage as exc:
                error: Exception = _Retryable(f"malformed body: {exc}")
            except (TimeoutError, _Retryable, aiohttp.ClientError) as exc:
                error = exc
            if attempt + 1 == self._retry.attempts:
                raise PolygonError(
                    None, self._scrub(f"gave up after {attempt + 1} attempts: {error}")
                )
            retry_after = error.retry_after if isinstance(error, _Retryable) else None
            delay = retry_after if retry_after is not None else self._retry.delay(attempt)
            log.warning("REST retry %d in %.2fs: %s", attempt + 1, delay, self._scrub(str(error)))
            metrics.rest_retry()
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _get_once(self, url: URL) -> bytes:
        """The body of a 200; ``_Retryable`` for a transient status, else ``PolygonError``."""
        if self._limiter is not None:
            await self._limiter.acquire()
        answered = False  # counted under its status once it comes, else as an error
        try:
            async with self._session.get(url, headers=self._headers,
                                         allow_redirects=False) as resp:  # fmt: skip
                answered = True
                metrics.rest_request(resp.status)
                if resp.status in RETRY_STATUSES:
                    wait = retry_after_s(
                        resp.headers, cap_s=self._retry.retry_after_cap_s, now=datetime.now(UTC)
                    )
                    raise _Retryable(f"HTTP {resp.status}", wait)
                raw = await self._read(resp)
                if resp.status == 200:
                    return raw
                raise PolygonError(resp.status, self._scrub(_error_message(resp, raw))[:500])
        except (TimeoutError, aiohttp.ClientError):
            if not answered:
                metrics.rest_request(None)
            raise

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        """The body, or ``PolygonError`` as soon as it is known to exceed the limit."""
        limit = self._limits.max_body_bytes
        body = bytearray()
        if resp.content_length is None or resp.content_length <= limit:
            async for chunk in resp.content.iter_chunked(READ_CHUNK):
                body += chunk
                if len(body) > limit:
                    break
            else:
                return bytes(body)
        resp.close()
        raise PolygonError(
            resp.status,
            f"response body larger than {limit} bytes (CHRONOX_REST_MAX_BODY_BYTES); not read",
        )

    def _scrub(self, text: str) -> str:
        """``text`` without the key, should a server or library ever echo it."""
        key = self._key.get_secret_value()
        return text.replace(key, "***") if key else text


def follow_next_url(current: URL, next_url: str, home: Origin) -> URL:
    """The URL ``next_url`` names (relative to ``current``), if it stays on ``home``.

    ``ForeignNextUrl`` for another origin, ``PolygonError`` for a link that is
    no http(s) URL or carries user credentials; nothing else, whatever the link.
    """
    try:
        target = current.join(URL(next_url))
        where = origin(target)
    except ValueError:
        raise PolygonError(None, "next_url is not a usable http(s) URL") from None
    if where != home:
        raise ForeignNextUrl(where, home)
    if target.raw_user is not None or target.raw_password is not None:
        raise PolygonError(None, "next_url carries user credentials; not followed")
    return target


def _page_key(url: URL) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What makes two page URLs the same page: path and query, whatever the parameter order."""
    return url.path, tuple(sorted(url.query.items()))


def _error_message(resp: aiohttp.ClientResponse, raw: bytes) -> str:
    """Polygon's own message of an error body, or what a redirect would have led to."""
    if 300 <= resp.status < 400:
        location = resp.headers.get("Location", "")
        try:
            where = str(origin(URL(resp.url).join(URL(location))))
        except ValueError:
            where = "an unusable URL"
        return f"redirect to {where} not followed: set the base URL to where the API lives"
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    message = (body.get("error") or body.get("message")) if isinstance(body, dict) else None
    return str(message) if message else "request failed"


def retry_after_s(headers: Mapping[str, str], *, cap_s: float, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for, within ``[0, cap_s]``; ``None`` if absent
    or unreadable (the caller backs off as usual).

    RFC 9110 allows delay seconds or an HTTP date. A negative or not-a-number
    delay is unreadable; an infinite one, or a date far ahead, waits the cap; a
    date in the past waits nothing.
    """
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = max(0.0, (moment - now).total_seconds())
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, cap_s)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def collect(pages: AsyncIterator[list[Bar]]) -> list[Bar]:
    """Every bar of a paginated query."""
    return [bar async for page in pages for bar in page]
