"""Our Polygon REST client against hostile Polygon-format servers on loopback: a next_url or a
redirect to another origin, pagination loops, endless pages, huge bodies, absurd Retry-After.

Each server here is a real aiohttp server started by the test, recording every request it
receives with its headers, so the tests see what reached whom.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from pydantic import SecretStr

from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.sources.polygon_rest import (
    ForeignNextUrl,
    PolygonError,
    PolygonRest,
    RestLimits,
    RetryPolicy,
    collect,
)
from tests.fixtures.sim import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = "hostile-test-key-8c1f"
START = datetime(2024, 1, 16, 14, 30, tzinfo=UTC)
END = datetime(2024, 1, 16, 21, 0, tzinfo=UTC)
FAST = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05, retry_after_cap_s=0.2)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Server:
    """A running test server: its base URL and every request it received."""

    url: str
    host: str
    port: int
    seen: list[dict[str, str]] = field(default_factory=list)

    def keys_received(self) -> list[str]:
        return [h for request in self.seen for h in request.values() if KEY in h]


@asynccontextmanager
async def serve(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Server]:
    server = Server("", host, port)

    async def record(request: web.Request) -> web.StreamResponse:
        server.seen.append({"path": request.path_qs, **request.headers})
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    server.port = runner.addresses[0][1]
    server.url = f"http://{host}:{server.port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def page(t_ms: int, next_url: str | None) -> web.Response:
    """One Polygon aggregates page holding one bar."""
    body: dict[str, Any] = {
        "ticker": "AAPL",
        "status": "OK",
        "results": [{"o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 100, "n": 3, "t": t_ms}],
    }
    if next_url is not None:
        body["next_url"] = next_url
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def first_ms(n: int = 0) -> int:
    return int(START.timestamp() * 1000) + 60_000 * n


async def fetch(
    base_url: str, *, limits: RestLimits | None = None, retry: RetryPolicy = FAST
) -> list[Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        client = PolygonRest(session, base_url=base_url, api_key=SecretStr(KEY),
                             retry=retry, limits=limits)  # fmt: skip
        return await collect(client.aggregates("AAPL", TIMEFRAMES["1m"], START, END))


async def refuse(request: web.Request) -> web.Response:
    return web.json_response({"status": "OK", "results": []})


@pytest.mark.parametrize("foreign_host", ["127.0.0.1", "127.0.0.2"])
async def test_a_foreign_next_url_is_refused_and_the_key_never_reaches_it(
    foreign_host: str,
) -> None:
    """Another port on the same host, then another host on the same port."""
    port = free_port() if foreign_host == "127.0.0.2" else 0
    async with serve(refuse, foreign_host, port) as foreign:
        link = f"{foreign.url}/v2/aggs/ticker/AAPL/range/1/minute/1/2?cursor=c2VjcmV0&apiKey=zz"

        async def base_page(request: web.Request) -> web.Response:
            return page(first_ms(), link)

        async with serve(base_page, "127.0.0.1", port) as base:
            with pytest.raises(ForeignNextUrl) as refused:
                await fetch(base.url)
    message = str(refused.value)
    assert f"{foreign_host}:{foreign.port}" in message
    assert KEY not in message and "cursor" not in message and "c2VjcmV0" not in message
    assert foreign.seen == [], "nothing at all was sent to the foreign server"
    assert len(base.seen) == 1 and base.seen[0]["Authorization"] == f"Bearer {KEY}"


async def test_a_next_url_to_another_scheme_or_a_protocol_relative_host_is_refused() -> None:
    async with serve(refuse) as foreign:
        links = iter([f"https://127.0.0.1:{foreign.port}/v2/x", f"//127.0.0.2:{foreign.port}/x"])

        async def base_page(request: web.Request) -> web.Response:
            return page(first_ms(), next(links))

        async with serve(base_page) as base:
            for _ in range(2):
                with pytest.raises(ForeignNextUrl):
                    await fetch(base.url)
    assert foreign.seen == [] and len(base.seen) == 2


async def test_a_same_origin_next_url_with_user_credentials_is_refused() -> None:
    async def base_page(request: web.Request) -> web.Response:
        return page(first_ms(), f"http://u:pw@127.0.0.1:{base.port}/v2/next")

    async with serve(base_page) as base:
        with pytest.raises(PolygonError, match="user credentials") as refused:
            await fetch(base.url)
    assert "pw" not in str(refused.value) and len(base.seen) == 1


async def test_a_redirect_is_not_followed() -> None:
    async with serve(refuse) as foreign:

        async def moved(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"{foreign.url}/v2/aggs?apiKey=zz")

        async with serve(moved) as base:
            with pytest.raises(PolygonError) as refused:
                await fetch(base.url)
    assert refused.value.status == 302
    assert foreign.url.removeprefix("http://") in str(refused.value)
    assert "apiKey" not in str(refused.value) and KEY not in str(refused.value)
    assert foreign.seen == []


async def test_same_origin_relative_next_urls_are_followed_with_the_key() -> None:
    async def pages(request: web.Request) -> web.Response:
        n = int(request.query.get("n", "0"))
        return page(first_ms(n), f"/v2/next?n={n + 1}" if n < 3 else None)

    async with serve(pages) as base:
        bars = await fetch(f"{base.url}/")
    assert [int(b.ts.timestamp() * 1000) for b in bars] == [first_ms(n) for n in range(4)]
    assert [r["Authorization"] for r in base.seen] == [f"Bearer {KEY}"] * 4


@pytest.mark.parametrize("cycle", [1, 3])
async def test_a_next_url_back_to_a_fetched_page_is_a_loop(cycle: int) -> None:
    async def pages(request: web.Request) -> web.Response:
        n = int(request.query.get("n", "0"))
        return page(first_ms(n), f"{base.url}/v2/next?n={(n + 1) % cycle}&z=1")

    async with serve(pages) as base:
        started = time.monotonic()
        with pytest.raises(PolygonError, match="loop"):
            await fetch(base.url)
    assert time.monotonic() - started < 5
    assert len(base.seen) == cycle + 1, "the first page, then each page of the cycle once"


async def test_endless_pages_stop_at_the_page_cap() -> None:
    async def pages(request: web.Request) -> web.Response:
        n = int(request.query.get("n", "0"))
        return page(first_ms(n), f"/v2/next?n={n + 1}")

    async with serve(pages) as base:
        with pytest.raises(PolygonError, match="more than 5 pages"):
            await fetch(base.url, limits=RestLimits(max_pages=5))
    assert len(base.seen) == 5


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_limit_is_refused_without_reading_it_all(chunked: bool) -> None:
    limit = 256 * 1024
    sent: list[int] = []

    async def huge(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=b"[" + b"0," * limit + b"0]", content_type="application/json")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(10_000):  # 640 MB if nobody stops reading
                await response.write(b" " * 65_536)
                sent.append(65_536)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async with serve(huge) as base:
        with pytest.raises(PolygonError, match="larger than 262144 bytes") as refused:
            await fetch(base.url, limits=RestLimits(max_body_bytes=limit))
        await asyncio.sleep(0.2)
    assert refused.value.status == 200 and len(base.seen) == 1, "not retried"
    assert sum(sent) < 100 * limit, "the server was cut off, not drained"


@pytest.mark.parametrize(
    "retry_after", ["inf", "1e999", "99999999", "Fri, 31 Dec 9999 23:59:59 GMT", "-1", "nan"]
)
async def test_retry_after_waits_at_most_its_cap(retry_after: str) -> None:
    async def limited(request: web.Request) -> web.Response:
        if len(base.seen) == 1:
            return web.json_response({"status": "ERROR"}, status=429,
                                     headers={"Retry-After": retry_after})  # fmt: skip
        return page(first_ms(), None)

    async with serve(limited) as base:
        started = time.monotonic()
        bars = await asyncio.wait_for(fetch(base.url), timeout=5)
    assert len(bars) == 1 and len(base.seen) == 2
    assert time.monotonic() - started < 2


async def test_an_error_message_that_echoes_the_key_is_scrubbed() -> None:
    async def echo(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        return web.json_response({"status": "ERROR", "error": f"bad key {auth}"}, status=401)

    async with serve(echo) as base:
        with pytest.raises(PolygonError) as refused:
            await fetch(base.url)
    assert refused.value.status == 401
    assert KEY not in str(refused.value) and "bad key Bearer ***" in str(refused.value)


async def test_splits_pages_skip_bad_records_and_stay_on_the_origin() -> None:
    good = {"id": "E1", "ticker": "NVDA", "execution_date": "2024-06-10", "split_from": 1,
            "split_to": 10}  # fmt: skip
    bad = [{**good, "split_to": 0}, {**good, "execution_date": "June 10"}, {**good, "ticker": 5},
           {**good, "split_from": "1"}, None]  # fmt: skip
    async with serve(refuse) as foreign:

        async def splits(request: web.Request) -> web.Response:
            if "cursor" not in request.query:
                body = {"status": "OK", "results": [*bad, good],
                        "next_url": f"{request.scheme}://{request.host}{request.path}?cursor=2"}
            elif request.query["cursor"] == "2":
                body = {"status": "OK", "results": [{**good, "execution_date": "2021-07-20",
                                                     "split_to": 4}],
                        "next_url": f"{foreign.url}/v3/reference/splits?cursor=3"}
            return web.json_response(body)  # fmt: skip

        async with serve(splits) as home:
            async with aiohttp.ClientSession() as session:
                client = PolygonRest(session, base_url=home.url, api_key=SecretStr(KEY),
                                     retry=FAST)  # fmt: skip
                with pytest.raises(ForeignNextUrl):
                    await client.splits("NVDA")
            assert [s["path"].split("?")[0] for s in home.seen] == ["/v3/reference/splits"] * 2
            assert "ticker=NVDA" in home.seen[0]["path"]
        assert foreign.seen == [] and KEY not in str(home.seen[1]["path"])

    async def one_page(request: web.Request) -> web.Response:
        return web.json_response({"status": "OK", "results": [*bad, good]})

    async with serve(one_page) as home, aiohttp.ClientSession() as session:
        client = PolygonRest(session, base_url=home.url, api_key=SecretStr(KEY), retry=FAST)
        records, skipped = await client.splits("NVDA")
    assert [(r.symbol, r.execution_date.isoformat(), r.split_to) for r in records] == [
        ("NVDA", "2024-06-10", 10.0)]
    assert len(skipped) == len(bad)
