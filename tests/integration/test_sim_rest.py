"""The simulator's REST answers against Polygon's OpenAPI spec, its faults and errors, and
its late trades (in a bar only once reported, as on the WebSocket).

The spec is the repository's copy, ``tests/specs/polygon/rest-openapi-stocks.json`` (unmodified).
One deliberate deviation: the spec types open-close ``preMarket`` as an integer
while its own example (and Polygon) sends a price such as ``324.5``; the
validator gets ``number`` there, and a test pins that this is the only error.
"""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jsonschema
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from chronox_stream.domain.market_calendar import NEW_YORK
from tests.fixtures.sim import SimServer

pytestmark = pytest.mark.integration

SPEC_HOST = "https://api.massive.com"
AAPL_MINUTES = "/v2/aggs/ticker/AAPL/range/1/minute/2024-01-16/2024-01-17"
SPEC = Path(__file__).resolve().parents[1] / "specs" / "polygon" / "rest-openapi-stocks.json"


@pytest.fixture(scope="module")
def raw_spec() -> dict[str, Any]:
    return dict(json.loads(SPEC.read_text()))


@pytest.fixture(scope="module")
def spec(raw_spec: dict[str, Any]) -> OpenAPI:
    patched = copy.deepcopy(raw_spec)
    open_close = patched["paths"]["/v1/open-close/{stocksTicker}/{date}"]["get"]
    schema = open_close["responses"]["200"]["content"]["application/json"]["schema"]
    schema["properties"]["preMarket"]["type"] = "number"
    return OpenAPI.from_dict(patched)


async def _get(
    sim: SimServer, path: str, *, key: str | None = "bearer", **params: str
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {sim.api_key}"} if key == "bearer" else {}
    if key not in (None, "bearer"):
        params["apiKey"] = key
    url = path if path.startswith("http") else sim.rest_url + path
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params=params, headers=headers) as resp:
            return resp.status, dict(resp.headers), await resp.read()


def _validate(spec: OpenAPI, path: str, status: int, body: bytes, **params: str) -> None:
    request = MockRequest(SPEC_HOST, "get", path.split("?")[0], args=params)
    spec.validate_response(request, MockResponse(body, status_code=status))


async def _follow(sim: SimServer, spec: OpenAPI, path: str, **params: str) -> list[dict[str, Any]]:
    """Every page of an aggregates query, each validated; returns all results."""
    results: list[dict[str, Any]] = []
    url: str | None = path
    pages = 0
    while url is not None:
        status, _, raw = await _get(sim, url, **(params if pages == 0 else {}))
        assert status == 200, raw
        _validate(spec, urlsplit(url).path if url.startswith("http") else url, status, raw)
        body = json.loads(raw)
        assert body["resultsCount"] == len(body.get("results", []))
        results.extend(body.get("results", []))
        url = body.get("next_url")
        pages += 1
    return results


async def test_aggregates_validate_and_paginate(sim: SimServer, spec: OpenAPI) -> None:
    status, _, raw = await _get(sim, AAPL_MINUTES, limit="50000")
    _validate(spec, AAPL_MINUTES, status, raw)
    whole = json.loads(raw)
    assert whole["status"] == "OK" and "next_url" not in whole and whole["resultsCount"] > 1000
    paged = await _follow(sim, spec, AAPL_MINUTES, limit="400")
    assert paged == whole["results"]
    for timespan in ("5/minute", "1/hour", "1/day", "1/week"):
        path = f"/v2/aggs/ticker/MSFT/range/{timespan}/2024-01-01/2024-01-17"
        status, _, raw = await _get(sim, path)
        _validate(spec, path, status, raw)
        assert status == 200 and json.loads(raw)["results"]


async def test_next_url_moves_from_and_carries_a_cursor_not_the_key(sim: SimServer) -> None:
    status, _, raw = await _get(sim, AAPL_MINUTES, key=sim.api_key, limit="10")
    body = json.loads(raw)
    next_url = body["next_url"]
    assert sim.api_key not in next_url and "apiKey" not in next_url
    parts = urlsplit(next_url)
    assert set(parse_qs(parts.query)) == {"cursor"}
    next_from = int(parts.path.split("/")[-2])
    assert next_from > body["results"][-1]["t"] and parts.path.endswith("/2024-01-17")
    status, _, raw = await _get(sim, next_url)
    assert json.loads(raw)["results"][0]["t"] == next_from
    status, _, raw = await _get(sim, AAPL_MINUTES, sort="desc", limit="10")
    body = json.loads(raw)
    times = [r["t"] for r in body["results"]]
    assert times == sorted(times, reverse=True)
    assert urlsplit(body["next_url"]).path.split("/")[-2] == "2024-01-16", "desc moves `to`"


async def test_holidays_have_no_results_and_early_closes_end_at_17(
    sim: SimServer, spec: OpenAPI
) -> None:
    path = "/v2/aggs/ticker/AAPL/range/1/minute/2024-01-15/2024-01-15"
    status, _, raw = await _get(sim, path)
    _validate(spec, path, status, raw)
    body = json.loads(raw)
    assert "results" not in body and body["resultsCount"] == 0 and body["status"] == "OK"
    bars = await _follow(sim, spec, "/v2/aggs/ticker/AAPL/range/1/minute/2023-11-24/2023-11-24")
    last = datetime.fromtimestamp(bars[-1]["t"] / 1000, tz=NEW_YORK)
    assert (last.hour, last.date()) == (16, date(2023, 11, 24))


async def test_other_endpoints_validate(
    sim: SimServer, spec: OpenAPI, raw_spec: dict[str, Any]
) -> None:
    for path in (
        "/v2/aggs/ticker/AAPL/prev",
        "/v2/snapshot/locale/us/markets/stocks/tickers/AAPL",
        "/v1/open-close/AAPL/2024-01-17",
        "/v1/marketstatus/now",
        "/v1/marketstatus/upcoming",
    ):
        status, _, raw = await _get(sim, path)
        assert status == 200, raw
        _validate(spec, path, status, raw)
    status, _, raw = await _get(sim, "/v1/open-close/AAPL/2024-01-17")
    operation = raw_spec["paths"]["/v1/open-close/{stocksTicker}/{date}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    errors = list(OAS30Validator(schema).iter_errors(json.loads(raw)))
    assert [list(e.path) for e in errors] == [["preMarket"]], "the spec's one mistyped field"
    status, _, raw = await _get(sim, "/v1/open-close/AAPL/2024-01-15")
    assert status == 404 and json.loads(raw)["status"] == "NOT_FOUND"


def _error_schema(raw_spec: dict[str, Any], field: str) -> dict[str, Any]:
    """The spec's ``StatusBase`` + ``RequestIdBase``, plus FORMATS.md's message field."""
    schemas = raw_spec["components"]["schemas"]
    return {
        "allOf": [
            schemas["StatusBase"],
            schemas["RequestIdBase"],
            {"required": [field], "properties": {field: {"type": "string"}}},
        ]
    }


async def test_auth_errors(sim: SimServer, spec: OpenAPI, raw_spec: dict[str, Any]) -> None:
    cases = [(None, "API Key was not provided"), ("wrong-key", "Unknown API Key")]
    for key, message in cases:
        status, _, raw = await _get(sim, AAPL_MINUTES, key=key)
        assert status == 401
        _validate(spec, AAPL_MINUTES, status, raw)
        body = json.loads(raw)
        jsonschema.validate(body, _error_schema(raw_spec, "error"))
        assert (body["status"], body["error"]) == ("ERROR", message)
        assert "wrong-key" not in raw.decode()
    status, _, raw = await _get(sim, AAPL_MINUTES, key=sim.api_key, limit="5")
    assert status == 200, "apiKey= works as well as the Bearer header"


async def test_forbidden_ticker_is_403(
    sim_knobs: SimServer, spec: OpenAPI, raw_spec: dict[str, Any]
) -> None:
    await sim_knobs.set_knobs(forbidden_tickers=["NVDA"])
    status, _, raw = await _get(sim_knobs, "/v2/aggs/ticker/NVDA/prev")
    assert status == 403
    _validate(spec, "/v2/aggs/ticker/NVDA/prev", status, raw)
    body = json.loads(raw)
    jsonschema.validate(body, _error_schema(raw_spec, "message"))
    assert body["status"] == "NOT_AUTHORIZED" and "not entitled" in body["message"]
    assert (await _get(sim_knobs, "/v2/aggs/ticker/AAPL/prev"))[0] == 200


async def test_rate_limit_is_429_with_retry_after(
    sim_knobs: SimServer, spec: OpenAPI, raw_spec: dict[str, Any]
) -> None:
    await sim_knobs.set_knobs(rate_limit=3)
    path = "/v2/aggs/ticker/AAPL/prev"
    statuses = [(await _get(sim_knobs, path))[0] for _ in range(3)]
    status, headers, raw = await _get(sim_knobs, path)
    assert statuses == [200, 200, 200] and status == 429
    _validate(spec, path, status, raw)
    body = json.loads(raw)
    jsonschema.validate(body, _error_schema(raw_spec, "error"))
    assert body["error"].startswith("You've exceeded the maximum requests per minute")
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_injected_failures_and_malformed_pages(sim_knobs: SimServer) -> None:
    await sim_knobs.set_knobs(fail_next=2, fail_status=503)
    first = [(await _get(sim_knobs, AAPL_MINUTES, limit="5"))[0] for _ in range(3)]
    assert first == [503, 503, 200]
    await sim_knobs.set_knobs(malformed_next=1)
    status, _, raw = await _get(sim_knobs, AAPL_MINUTES, limit="5")
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    status, _, raw = await _get(sim_knobs, AAPL_MINUTES, limit="5")
    assert json.loads(raw)["resultsCount"] == 5


async def test_page_size_knob_caps_the_limit(sim_knobs: SimServer, spec: OpenAPI) -> None:
    await sim_knobs.set_knobs(page_size=300)
    status, _, raw = await _get(sim_knobs, AAPL_MINUTES, limit="50000")
    body = json.loads(raw)
    assert body["resultsCount"] == 300 and "next_url" in body
    paged = await _follow(sim_knobs, spec, AAPL_MINUTES, limit="50000")
    await sim_knobs.reset_knobs()
    status, _, raw = await _get(sim_knobs, AAPL_MINUTES, limit="50000")
    assert paged == json.loads(raw)["results"]


async def test_bad_requests_are_400(sim: SimServer) -> None:
    for path in (
        "/v2/aggs/ticker/AAPL/range/0/minute/2024-01-16/2024-01-17",
        "/v2/aggs/ticker/AAPL/range/1/fortnight/2024-01-16/2024-01-17",
        "/v2/aggs/ticker/AAPL/range/1/minute/16-01-2024/2024-01-17",
    ):
        status, _, raw = await _get(sim, path)
        assert status == 400 and json.loads(raw)["status"] == "ERROR", path
    status, _, _ = await _get(sim, AAPL_MINUTES, cursor="%%%")
    assert status == 400


MORNING = "2024-01-16T15:00:00Z"  # 10:00 New York
MORNING_MS = int(datetime.fromisoformat(MORNING).timestamp() * 1000)


async def _minutes(server: SimServer, symbol: str, first_ms: int, last_ms: int) -> dict[int, Any]:
    """REST minute bars with ``first_ms <= t <= last_ms``, as (o, h, l, c, v, vw) by ``t``."""
    status, _, raw = await _get(
        server, f"/v2/aggs/ticker/{symbol}/range/1/minute/{first_ms}/{last_ms}", limit="50000"
    )
    assert status == 200, raw
    return {b["t"]: (b["o"], b["h"], b["l"], b["c"], b["v"], b["vw"])
            for b in json.loads(raw).get("results", [])}  # fmt: skip


async def _run_websocket(server: SimServer, until_ms: int) -> list[dict[str, Any]]:
    """``AM`` events of AAPL sent while the clock goes from where it is to exactly ``until_ms``:
    at 600x to some minutes before, then one step (the feed sends all that fell due)."""
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url) as ws:
        await ws.receive_json()
        await ws.send_json({"action": "auth", "params": server.api_key})
        assert (await ws.receive_json())[0]["status"] == "auth_success"
        await ws.send_json({"action": "subscribe", "params": "AM.AAPL"})
        await ws.receive_json()
        await server.set_clock(speed=600)
        while (await server.clock())["now_ns"] < (until_ms - 5 * 60_000) * 10**6:
            events.extend(await _events_within(ws, 0.2))
        await server.set_clock(speed=0)
        until = datetime.fromtimestamp(until_ms / 1000, tz=NEW_YORK).isoformat()
        await server.set_clock(now=until)
        events.extend(await _events_within(ws, 1.0))
    return [e for e in events if e["ev"] == "AM"]


async def _events_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[Any]:
    try:
        return list(await asyncio.wait_for(ws.receive_json(), seconds))
    except TimeoutError:
        return []


async def test_rest_bars_take_a_late_trade_only_once_it_is_reported(
    sim_factory: Any,
) -> None:
    """At any sim-now, a REST minute bar is the last ``AM`` the WebSocket sent for it: a late
    trade enters both at its report time; 15 minutes later they are final. Without late
    reports (knob off) every trade is on time, so REST is final at once."""
    server = await sim_factory(clock_start=MORNING, speed=0, flatfiles=False)
    now_ms = MORNING_MS + 20 * 60_000
    sent = await _run_websocket(server, now_ms)
    assert (await server.clock())["now_ns"] == now_ms * 10**6
    last_am = {e["s"]: (e["o"], e["h"], e["l"], e["c"], e["v"], e["vw"]) for e in sent}
    early = await _minutes(server, "AAPL", MORNING_MS, now_ms - 60_000)
    assert early == {t: bar for t, bar in last_am.items() if t >= MORNING_MS}
    assert len(early) >= 18, "a busy regular morning"

    await server.set_knobs(late_trades=False)
    on_time = await _minutes(server, "AAPL", MORNING_MS, now_ms - 60_000)
    await server.reset_knobs()
    settled = datetime.fromtimestamp((now_ms + 16 * 60_000) / 1000, tz=NEW_YORK)
    await server.set_clock(now=settled.isoformat())
    final = await _minutes(server, "AAPL", MORNING_MS, now_ms - 60_000)
    assert on_time == final
    pending = [t for t in final if early[t] != final[t]]
    assert pending, "some minutes still lacked a late trade at the first look"
    assert all(early[t][4] < final[t][4] for t in pending), "late trades only add volume"
    assert min(pending) >= now_ms - 16 * 60_000, "reports come within 15 minutes"
