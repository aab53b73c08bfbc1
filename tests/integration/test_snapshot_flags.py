"""The three snapshot methods against a simulator on the real clock (the seed's
test_snapshot_flags): each reads its own endpoint and publishes provisional envelopes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.settings import Settings
from tests.fixtures.sim import SimFactory, SimServer
from tests.integration.conftest import WorkerFactory, isolated
from tests.integration.helpers import consume, wait_finished

# One process runs the module, so that its tests share one simulator.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("snapshot-flags")]


@pytest.fixture(scope="module")
async def server(module_sim_factory: SimFactory) -> SimServer:
    """A simulator whose clock is the real one, as the worker's is (standing still from the
    module's start: the tests' requests are read-only)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return await module_sim_factory(clock_start=now, speed=0, flatfiles=False)


@pytest.fixture
async def settings(stack: Settings, server: SimServer, tmp_path: Path) -> Any:
    """Here: settings against the module's simulator."""
    async for value in isolated(stack, server, tmp_path):
        yield value


async def served(settings: Settings, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {settings.polygon_api_key.get_secret_value()}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(settings.polygon_rest_url + path, headers=headers) as resp:
            assert resp.status == 200
            return dict(await resp.json())


async def run_snapshot(
    settings: Settings, producer: AIOKafkaProducer, method: str
) -> tuple[list[Any], list[dict[str, Any]]]:
    rid = f"snap-{method}"
    doc = {
        "request_id": rid,
        "symbols": ["AAPL"],
        "strategy": "snapshot",
        "snapshot_method": method,
    }
    await producer.send_and_wait(
        settings.topic("control"), key=rid.encode(), value=orjson.dumps(doc)
    )
    events = await wait_finished(settings, rid)
    (done,) = [e for e in events if e["phase"] == "snapshot" and e["state"] != "started"]
    assert done["state"] == "done", done
    envelopes = []
    for tf in ("1m", "1d"):
        records = await consume(settings, settings.topic(f"bars.{tf}"), until=bool, timeout_s=3)
        envelopes += [orjson.loads(r.value) for r in records]
    assert len(envelopes) == done["count"]
    return events, envelopes


async def test_snapshot_method_rest(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """``rest``: the previous-close endpoint, one day bar."""
    start_worker()
    _, envelopes = await run_snapshot(settings, producer, "rest")
    (prev,) = (await served(settings, "/v2/aggs/ticker/AAPL/prev"))["results"]
    (envelope,) = envelopes
    assert envelope["tf"] == "1d"
    assert envelope["ohlcv"]["close"] == prev["c"] and envelope["ohlcv"]["volume"] == prev["v"]
    assert envelope["ts"] == datetime.fromtimestamp(prev["t"] / 1000, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


async def test_snapshot_method_agg(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """``agg``: the latest session's aggregates at the request's timeframe."""
    start_worker()
    _, envelopes = await run_snapshot(settings, producer, "agg")
    assert envelopes, "the latest session has minute bars"
    assert {e["tf"] for e in envelopes} == {"1m"}
    days = {e["ts"][:10] for e in envelopes}
    assert len(days) <= 2, "one New York session spans at most two UTC dates"


async def test_snapshot_method_snapshot(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """``snapshot``: the single-ticker snapshot's current minute and day bars."""
    start_worker()
    _, envelopes = await run_snapshot(settings, producer, "snapshot")
    ticker = (await served(settings, "/v2/snapshot/locale/us/markets/stocks/tickers/AAPL"))[
        "ticker"
    ]
    by_tf = {e["tf"]: e for e in envelopes}
    if ticker.get("day", {}).get("o"):
        assert by_tf["1d"]["ohlcv"]["close"] == ticker["day"]["c"]
    if ticker.get("min", {}).get("t"):
        assert by_tf["1m"]["ohlcv"]["close"] == ticker["min"]["c"]
    assert envelopes


async def test_envelope_published_with_snapshot(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker()
    _, envelopes = await run_snapshot(settings, producer, "snapshot")
    for envelope in envelopes:
        assert list(envelope) == ["event", "symbol", "tf", "ts", "ohlcv", "features", "source",
                                  "version", "dedup_key"]  # fmt: skip
        assert envelope["source"] == "snapshot" and envelope["version"] == "v1"
        assert envelope["dedup_key"] == f"AAPL|{envelope['tf']}|{envelope['ts']}"
