"""The read path against bars a real worker stored: ``chronox bars`` in every format and the
HTTP API of ``chronox serve``, each answer validated against the repository's OpenAPI
document.

One worker backfills AAPL and NVDA (whose 4-for-1 split the simulator executes on
2024-01-12) from the simulator's flat files for the module; the expected values are the
rows in PostgreSQL, read here with SQL, and, for ``--adjusted``, the simulator's own
``adjusted=true`` aggregates.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pyarrow.parquet as pq
import pytest
import redis.asyncio as aioredis
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from chronox_stream.client.children import Child
from chronox_stream.client.status import group_lag
from chronox_stream.contracts.envelope import envelope
from chronox_stream.domain.bars import Bar
from chronox_stream.runtime import kafka
from chronox_stream.runtime.names import bars_channel, live_channel
from chronox_stream.settings import Settings
from tests.fixtures.sim import SimServer, free_port
from tests.integration.conftest import isolated
from tests.integration.helpers import fetch_rows, poll, rest_aggregates, trading_date_ms

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300),
              pytest.mark.xdist_group("read-path")]  # fmt: skip

SYMBOLS = ("AAPL", "NVDA")
FIRST, LAST = "2024-01-10", "2024-01-12"  # New York trading dates, the split on the 12th
SPEC_FILE = Path(__file__).resolve().parents[2] / "chronox_stream" / "read" / "openapi.json"
SPEC_HOST = "http://127.0.0.1:6070"  # the document's server; the tests' port differs
HTTP_MAX_ROWS = 1000  # the server's cap: more than a day of minutes, less than two
FIELDS = ("symbol", "tf", "ts", "open", "high", "low", "close", "volume", "vwap",
          "transactions", "source", "revision")  # fmt: skip


def chronox(settings: Settings, *args: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    command = [sys.executable, "-m", "chronox_stream", *args]
    return subprocess.run(command, env={**os.environ, **settings.to_env(), **(env or {})},
                          capture_output=True, text=True, timeout=120, check=check)  # fmt: skip


async def mirrored(settings: Settings) -> bool:
    """Whether every bar on Kafka is in PostgreSQL too."""
    return (await group_lag(settings))["postgres sink"] == 0


@pytest.fixture(scope="module")
async def stored(stack: Settings, sim: SimServer,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:  # fmt: skip
    """Settings whose PostgreSQL schema holds the backfilled bars (and splits) of SYMBOLS."""
    tmp = tmp_path_factory.mktemp("read-path")
    async for settings in isolated(stack, sim, tmp):
        worker = Child.start("worker", ["chronox_stream", "worker"], env=settings.to_env(),
                             log_path=tmp / "worker.log")  # fmt: skip
        try:
            await asyncio.to_thread(worker.wait_for_log, "Ready", timeout_s=120)
            await asyncio.to_thread(chronox, settings, "registry", "add", *SYMBOLS,
                                    "--strategy", "flatpack")  # fmt: skip
            await asyncio.to_thread(chronox, settings, "ingest", "--symbols", *SYMBOLS,
                                    "--strategy", "flatpack", "--start", FIRST, "--end", LAST,
                                    "--no-stream", "--wait", "--timeout", "180")  # fmt: skip

            assert await poll(partial(mirrored, settings), timeout_s=60), "the sink is behind"
            yield settings
        finally:
            await asyncio.to_thread(worker.stop)


@pytest.fixture(scope="module")
async def server(stored: Settings, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[str]:  # fmt: skip
    """``chronox serve`` on a free port of loopback; its base URL."""
    own = stored.with_overrides(serve_port=free_port(), read_max_rows=HTTP_MAX_ROWS)
    child = Child.start("serve", ["chronox_stream", "serve"], env=own.to_env(),
                        log_path=tmp_path_factory.mktemp("serve") / "serve.log")  # fmt: skip
    try:
        await asyncio.to_thread(child.wait_for_log, "serving on", timeout_s=60)
        yield f"http://127.0.0.1:{own.serve_port}"
    finally:
        await asyncio.to_thread(child.stop)


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(SPEC_FILE.read_text()))


async def stored_rows(settings: Settings, tf: str = "1m") -> list[dict[str, Any]]:
    """The rows of SYMBOLS in the range, as ``chronox bars`` should give them."""
    start = datetime.fromtimestamp(trading_date_ms(FIRST) / 1000, tz=UTC)
    end = datetime.fromtimestamp((trading_date_ms(LAST, end_of_day=True) + 1) / 1000, tz=UTC)
    rows = await fetch_rows(settings, f"SELECT {', '.join(FIELDS)} FROM {{schema}}.bars "
                            "WHERE tf = $1 AND ts >= $2 AND ts < $3 ORDER BY symbol, ts",
                            tf, start, end)  # fmt: skip
    return [{**dict(r), "ts": r["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")} for r in rows]


def from_csv(text: str) -> list[dict[str, Any]]:
    """CSV rows typed back: numbers as numbers, empty cells as ``None``."""
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        doc: dict[str, Any] = dict(row)
        for key in ("open", "high", "low", "close", "volume", "vwap"):
            doc[key] = float(doc[key]) if doc[key] else None
        for key in ("transactions", "revision"):
            doc[key] = int(doc[key]) if doc[key] else None
        out.append(doc)
    return out


async def test_bars_in_csv_and_json_are_the_stored_rows(stored: Settings) -> None:
    expected = await stored_rows(stored)
    assert {r["symbol"] for r in expected} == set(SYMBOLS) and len(expected) > 1000
    window = ("--tf", "1m", "--start", FIRST, "--end", LAST)
    as_csv = await asyncio.to_thread(chronox, stored, "bars", *SYMBOLS, *window, "--format", "csv")
    assert from_csv(as_csv.stdout) == expected
    as_json = await asyncio.to_thread(chronox, stored, "bars", *SYMBOLS, *window, "--json")
    assert json.loads(as_json.stdout) == expected
    formatted = await asyncio.to_thread(chronox, stored, "bars", *SYMBOLS, *window,
                                        "--format", "json")  # fmt: skip
    assert formatted.stdout == as_json.stdout


async def test_bars_to_parquet_reads_back(stored: Settings, tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    await asyncio.to_thread(chronox, stored, "bars", *SYMBOLS, "--start", FIRST, "--end", LAST,
                            "--format", "parquet", "--output", str(out))  # fmt: skip
    table = pq.read_table(out).to_pylist()
    read = [{**r, "ts": r["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")} for r in table]
    assert read == await stored_rows(stored)
    assert str(pq.read_schema(out).field("ts").type) == "timestamp[us, tz=UTC]"


async def test_adjusted_bars_are_the_simulators_adjusted_aggregates(
    stored: Settings, sim: SimServer
) -> None:
    splits = (await sim.info())["splits"]
    assert [s["ticker"] for s in splits] == ["NVDA"]
    tail = f"1/minute/{trading_date_ms(FIRST)}/{trading_date_ms(LAST, end_of_day=True)}"
    # Flat files carry no vwap: the prices, volume and trade count are compared.
    truth = {b["t"] // 1000: (b["o"], b["h"], b["l"], b["c"], b["v"], b["n"])
             for b in await rest_aggregates(sim.rest_url, sim.api_key, "NVDA", tail,
                                            adjusted=True)}  # fmt: skip
    result = await asyncio.to_thread(chronox, stored, "bars", "NVDA", "--start", FIRST, "--end",
                                     LAST, "--adjusted", "--json")  # fmt: skip
    read = json.loads(result.stdout)
    got = {int(datetime.fromisoformat(b["ts"]).timestamp()):
           tuple(b[k] for k in ("open", "high", "low", "close", "volume", "transactions"))
           for b in read}  # fmt: skip
    assert got == truth
    factor = splits[0]["split_to"] / splits[0]["split_from"]
    assert {b["split_factor"] for b in read} == {factor, 1.0}


async def test_bars_table_and_refusals(stored: Settings) -> None:
    table = await asyncio.to_thread(chronox, stored, "bars", "AAPL", "--start", FIRST,
                                    "--end", FIRST)  # fmt: skip
    rows = [r for r in await stored_rows(stored) if r["symbol"] == "AAPL"
            and r["ts"] < "2024-01-11T05:00:00Z"]  # fmt: skip
    assert f"{len(rows)} bar(s)" in table.stdout and rows[0]["ts"] in table.stdout

    for args, words in (
        (("bars", "AAPL", "--tf", "2m", "--start", FIRST, "--end", LAST), "tf must be one of"),
        (("bars", "aapl", "--start", FIRST, "--end", LAST), "is not a ticker"),
        (("bars", "AAPL", "--start", LAST, "--end", FIRST), "start must be before end"),
        (("bars", "AAPL", "--start", FIRST, "--end", LAST, "--format", "parquet"), "--output"),
    ):
        refused = await asyncio.to_thread(chronox, stored, *args, check=False)
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr

    password = "no-such-pass-8f3a"
    down = await asyncio.to_thread(
        chronox, stored, "bars", "AAPL", "--start", FIRST, "--end", LAST, check=False,
        env={"CHRONOX_POSTGRES_DSN": f"postgresql://chronox:{password}@127.0.0.1:{free_port()}/x",
             "CHRONOX_POSTGRES_TIMEOUT_S": "5"},
    )  # fmt: skip
    assert down.returncode == 4 and "unreachable" in down.stderr, down.stderr
    assert len(down.stderr.strip().splitlines()) == 1 and password not in down.stderr + down.stdout


async def _get(spec: OpenAPI, base: str, path: str, **params: str) -> tuple[int, Any]:
    """GET ``path``; the answer validated against the OpenAPI document."""
    async with aiohttp.ClientSession() as session:
        async with session.get(base + path, params=params) as resp:
            body = await resp.read()
            content_type = resp.headers["Content-Type"].split(";")[0]
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
    request = MockRequest(SPEC_HOST, "get", path, args=params)
    spec.validate_response(request, MockResponse(body, status_code=resp.status,
                                                  content_type=content_type))  # fmt: skip
    return resp.status, orjson.loads(body)


async def test_http_bars_symbols_and_status(stored: Settings, server: str, spec: OpenAPI) -> None:
    expected = [r for r in await stored_rows(stored) if r["symbol"] == "NVDA"
                and r["ts"] < "2024-01-11T05:00:00Z"]  # fmt: skip
    status, body = await _get(spec, server, "/v1/bars/NVDA", tf="1m", start=FIRST, end=FIRST)
    assert status == 200 and body["bars"] == expected
    status, body = await _get(spec, server, "/v1/bars/NVDA", tf="1m", start=FIRST, end=LAST,
                              limit="10")  # fmt: skip
    newest = [r for r in await stored_rows(stored) if r["symbol"] == "NVDA"][-10:]
    assert status == 200 and body["bars"] == newest
    status, body = await _get(spec, server, "/v1/bars/NVDA", start=LAST, end=LAST,
                              adjusted="true")  # fmt: skip
    assert status == 200 and body["adjusted"] and {b["split_factor"] for b in body["bars"]} == {1.0}

    async def registered() -> Any:
        status, body = await _get(spec, server, "/v1/symbols")
        return body if status == 200 and len(body["symbols"]) == len(SYMBOLS) else None

    body = await poll(registered, timeout_s=30)
    assert body and [e["symbol"] for e in body["symbols"]] == sorted(SYMBOLS)
    assert all(e["strategy"] == "flatpack" and e["last_backfill"] for e in body["symbols"])

    producer = kafka.producer(stored)  # a record the control agent dead-letters
    await producer.start()
    try:
        await producer.send_and_wait(stored.topic("control"), b"{not json")
    finally:
        await producer.stop()

    async def dead_lettered() -> Any:
        status, body = await _get(spec, server, "/v1/status")
        return body if status == 200 and body["dead_letters"] >= 1 else None

    report = await poll(dead_lettered, timeout_s=60)
    assert report, "the dead letter is not counted"
    assert [s["symbol"] for s in report["symbols"]] == sorted(SYMBOLS)
    assert set(report["lag"]) == {"agents", "ticks", "postgres_sink", "redis_sink"}
    assert report["lag"]["postgres_sink"] == 0 and report["stream"]["connected"] is False

    async with aiohttp.ClientSession() as session:
        async with session.get(server + "/v1/openapi.json") as resp:
            assert await resp.json() == json.loads(SPEC_FILE.read_text())


async def test_http_refuses_bad_parameters_with_a_reason(server: str, spec: OpenAPI) -> None:
    for path, params, reason in (
        ("/v1/bars/aapl", {}, "invalid_symbol"),
        ("/v1/bars/AAPL", {"tf": "2m"}, "invalid_timeframe"),
        ("/v1/bars/AAPL", {"start": LAST, "end": FIRST}, "invalid_range"),
        ("/v1/bars/AAPL", {"start": "yesterday"}, "invalid_range"),
        ("/v1/bars/AAPL", {"adjusted": "yes"}, "invalid_value"),
        ("/v1/bars/AAPL", {"limit": "-1"}, "invalid_value"),
        ("/v1/bars/AAPL", {"limit": "0"}, "out_of_range"),
        ("/v1/bars/AAPL", {"start": FIRST, "end": LAST}, "out_of_range"),  # > HTTP_MAX_ROWS
        ("/v1/bars/AAPL", {"sql": "1"}, "unknown_field"),
        ("/v1/live/AAPL", {"tf": "7m"}, "invalid_timeframe"),
        ("/v1/status", {"verbose": "1"}, "unknown_field"),
    ):
        status, body = await _get(spec, server, path, **params)
        assert (status, body["reason"]) == (400, reason), (path, params, body)


async def _subscribers(client: aioredis.Redis, channels: list[str]) -> list[int]:
    return [n for _, n in await client.pubsub_numsub(*channels)]


async def test_live_events_and_the_stream_ends_with_its_client(
    stored: Settings, server: str
) -> None:
    prefix = stored.redis_prefix
    channels = [live_channel(prefix, "AAPL", "1m"), bars_channel(prefix, "AAPL", "1m")]
    client = aioredis.from_url(stored.redis_url.get_secret_value())
    bar = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 12, 15, 1, tzinfo=UTC), open=185.0,
              high=186.0, low=184.5, close=185.5, volume=1200.0)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    try:
        resp = await session.get(server + "/v1/live/AAPL", params={"tf": "1m"})
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert await resp.content.readline() == b": subscribed\n"
        assert await _subscribers(client, channels) == [1, 1]
        await client.publish(channels[0], b"not an envelope")
        await client.publish(channels[0], envelope(bar, "stream"))
        lines = [await resp.content.readline() for _ in range(4)]
        assert lines[1:3] == [b"event: live\n", b"data: " + orjson.dumps({
            "ts": "2024-01-12T15:01:00Z", "time": int(bar.ts.timestamp()), "open": 185.0,
            "high": 186.0, "low": 184.5, "close": 185.5, "volume": 1200.0,
            "source": "stream"}) + b"\n"]  # fmt: skip
        resp.close()

        async def unsubscribed() -> bool:
            return await _subscribers(client, channels) == [0, 0]

        assert await poll(unsubscribed, timeout_s=20), "the stream outlived its client"
    finally:
        await session.close()
        await client.aclose()
