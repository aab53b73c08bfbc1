"""The simulator's split: unadjusted flat files and ``adjusted=false``, scaled ``adjusted=true``,
and ``/v3/reference/splits`` in Polygon's format.

The shared simulator runs the default market, whose NVDA splits 4-for-1 on
2024-01-12 (``chronox_stream.sim.corporate.DEFAULT_SPLITS_SPEC``); the test
reads the split from ``/_sim/info``, as any user of the simulator would.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jsonschema
import pytest

from chronox_stream.sim.sessions import ny_midnight_ns
from tests.fixtures.sim import SimFactory, SimServer
from tests.integration.test_sim_flatfiles import key, read_csv

pytestmark = pytest.mark.integration

#: Polygon's documented response of ``GET /v3/reference/splits`` (List Splits).
SPLITS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "request_id"],
    "properties": {
        "status": {"type": "string"},
        "request_id": {"type": "string"},
        "next_url": {"type": "string"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["execution_date", "split_from", "split_to", "ticker", "id"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "execution_date": {"type": "string", "format": "date",
                                       "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                    "split_from": {"type": "number"},
                    "split_to": {"type": "number"},
                    "ticker": {"type": "string"},
                },
            },
        },
    },
}  # fmt: skip


async def _get(sim: SimServer, url: str, **params: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    full = url if url.startswith("http") else sim.rest_url + url
    async with aiohttp.ClientSession() as session:
        async with session.get(full, params=params, headers=headers) as resp:
            return resp.status, json.loads(await resp.read())


async def _split(sim: SimServer) -> dict[str, Any]:
    (split,) = (await sim.info())["splits"]
    return dict(split)


async def _bars(sim: SimServer, symbol: str, tail: str, adjusted: str) -> list[dict[str, Any]]:
    status, body = await _get(sim, f"/v2/aggs/ticker/{symbol}/range/{tail}", limit="50000",
                              adjusted=adjusted)  # fmt: skip
    assert status == 200 and body["adjusted"] is (adjusted == "true")
    return list(body["results"])


async def test_info_and_the_reference_endpoint_show_the_split(sim: SimServer) -> None:
    split = await _split(sim)
    assert split == {"ticker": "NVDA", "execution_date": "2024-01-12", "split_from": 1,
                     "split_to": 4}  # fmt: skip
    status, body = await _get(sim, "/v3/reference/splits", ticker="NVDA")
    assert status == 200
    jsonschema.validate(body, SPLITS_SCHEMA)
    (result,) = body["results"]
    assert {k: result[k] for k in split} == split
    status, body = await _get(sim, "/v3/reference/splits", ticker="AAPL")
    assert status == 200 and body["results"] == []
    status, body = await _get(sim, "/v3/reference/splits", limit="0")
    assert status == 400 and body["status"] == "ERROR"


async def test_the_listing_pages_by_next_url_without_the_key(sim_factory: SimFactory) -> None:
    specs = ("AAPL:2020-08-31:1:4", "TSLA:2022-08-25:1:3", "GE:2021-08-02:8:1")
    sim = await sim_factory(flatfiles=False, extra=tuple(f"--split={s}" for s in specs))
    seen: list[dict[str, Any]] = []
    status, body = await _get(sim, "/v3/reference/splits", limit="2", order="desc",
                              apiKey=sim.api_key)  # fmt: skip
    while True:
        assert status == 200
        jsonschema.validate(body, SPLITS_SCHEMA)
        seen.extend(body["results"])
        if "next_url" not in body:
            break
        assert sim.api_key not in body["next_url"] and "apiKey" not in body["next_url"]
        assert urlsplit(body["next_url"]).path == "/v3/reference/splits"
        status, body = await _get(sim, body["next_url"])
    assert [(r["ticker"], r["execution_date"]) for r in seen] == [
        ("TSLA", "2022-08-25"), ("GE", "2021-08-02"), ("AAPL", "2020-08-31")]
    assert (await sim.info())["splits"] == [
        {"ticker": t, "execution_date": d, "split_from": int(a), "split_to": int(b)}
        for t, d, a, b in (s.split(":") for s in specs)]  # fmt: skip


def _file_bars(rows: list[list[str]], symbol: str) -> list[tuple[Any, ...]]:
    return [(float(o), float(h), float(low), float(c), int(v), int(ns) // 10**6, int(n))
            for sym, v, o, c, h, low, ns, n in rows[1:] if sym == symbol]  # fmt: skip


def _rest_tuple(bar: dict[str, Any]) -> tuple[Any, ...]:
    return (bar["o"], bar["h"], bar["l"], bar["c"], bar["v"], bar["t"], bar["n"])


async def test_unadjusted_rest_equals_the_flat_files_around_the_split(sim: SimServer) -> None:
    split = await _split(sim)
    symbol = split["ticker"]
    async with sim.s3_client() as s3:
        for day in ("2024-01-11", split["execution_date"]):
            for kind, span in (("minute_aggs_v1", "1/minute"), ("day_aggs_v1", "1/day")):
                rows = await read_csv(s3, sim.bucket, key(kind, day))
                raw = await _bars(sim, symbol, f"{span}/{day}/{day}", "false")
                assert [_rest_tuple(b) for b in raw] == _file_bars(rows, symbol)
    before = await _bars(sim, symbol, "1/day/2024-01-11/2024-01-11", "false")
    after = await _bars(sim, symbol, f"1/day/{split['execution_date']}/2024-01-12", "false")
    ratio = split["split_to"] / split["split_from"]
    assert 0.8 * ratio < before[0]["c"] / after[0]["o"] < 1.2 * ratio, "the raw price jumps"


async def test_adjusted_rest_is_the_unadjusted_bars_scaled_by_the_ratio(sim: SimServer) -> None:
    split = await _split(sim)
    symbol, ratio = split["ticker"], split["split_to"] / split["split_from"]
    for span in ("1/minute", "5/minute", "1/day"):
        tail = f"{span}/2024-01-10/2024-01-16"
        raw = await _bars(sim, symbol, tail, "false")
        adjusted = await _bars(sim, symbol, tail, "true")
        assert [b["t"] for b in raw] == [b["t"] for b in adjusted]
        for r, a in zip(raw, adjusted, strict=True):
            f = ratio if r["t"] < _ms(split["execution_date"]) else 1.0
            assert a == {"o": r["o"] / f, "h": r["h"] / f, "l": r["l"] / f, "c": r["c"] / f,
                         "vw": r["vw"] / f, "v": r["v"] * f, "n": r["n"], "t": r["t"]}
    other = await _bars(sim, "AAPL", "1/minute/2024-01-10/2024-01-11", "true")
    assert other == await _bars(sim, "AAPL", "1/minute/2024-01-10/2024-01-11", "false")
    status, body = await _get(sim, f"/v2/aggs/ticker/{symbol}/prev", adjusted="false")
    assert status == 200 and body["adjusted"] is False


def _ms(day: str) -> int:
    return ny_midnight_ns(date.fromisoformat(day)) // 1_000_000
