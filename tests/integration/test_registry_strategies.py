"""Registry-driven runs and strategies on the real stack (the seed's test_registry_strategies)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.client.registry import read_entries, send_commands
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, fetch_rows, poll, wait_finished

pytestmark = pytest.mark.integration

DAYS = {"start": "2024-01-11", "end": "2024-01-16"}


async def run(producer: AIOKafkaProducer, settings: Settings, rid: str, **fields: Any) -> list[Any]:
    doc = {"request_id": rid, **DAYS, **fields}
    await producer.send_and_wait(
        settings.topic("control"), key=rid.encode(), value=orjson.dumps(doc)
    )
    return await wait_finished(settings, rid, timeout_s=180)


def states(events: list[Any]) -> dict[tuple[str, str], str]:
    return {(e["symbol"], e["phase"]): e["state"] for e in events if e.get("phase")
            and e["state"] != "started"}  # fmt: skip


async def test_flatpack_api_strategy(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """A registry-driven request runs each enabled symbol's own strategy, and only those."""
    await send_commands(settings, [
        RegistryCommand(op="add", symbol="AAPL", strategy="flatpack+api"),
        RegistryCommand(op="add", symbol="MSFT", strategy="api"),
        RegistryCommand(op="add", symbol="NVDA", strategy="api", enabled=False),
    ])  # fmt: skip
    start_worker()
    await poll(lambda: _registered(settings, 3), timeout_s=60)
    events = await run(producer, settings, "reg-1")
    assert states(events) == {
        ("AAPL", "flatpack"): "done",
        ("AAPL", "api"): "done",
        ("MSFT", "api"): "done",
    }
    by = await poll(lambda: _settled_counts(settings), timeout_s=60)
    assert by[("AAPL", "flatpack")] > 500, "the flat files cover both days"
    assert by[("MSFT", "api")] > 500
    assert ("NVDA", "api") not in by


async def _settled_counts(settings: Settings) -> dict[tuple[str, str], int] | None:
    """Rows per (symbol, source) once the sink stopped adding rows for a second."""
    sql = "SELECT symbol, source, count(*) AS n FROM {schema}.bars GROUP BY symbol, source"
    first = await fetch_rows(settings, sql)
    await asyncio.sleep(1)
    second = await fetch_rows(settings, sql)
    if not second or first != second:
        return None
    return {(r["symbol"], r["source"]): r["n"] for r in second}


async def _registered(settings: Settings, n: int) -> bool:
    return len(await read_entries(settings)) >= n


async def test_flatpack_api_snapshot_stream_full_hybrid(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker()
    events = await run(producer, settings, "hyb-1", symbols=["AAPL"],
                       strategy="flatpack+api+snapshot+stream")  # fmt: skip
    assert states(events) == {
        ("AAPL", "flatpack"): "done",
        ("AAPL", "api"): "done",
        ("AAPL", "snapshot"): "done",
        ("AAPL", "stream"): "done",
    }
    phases = [e["phase"] for e in events if e["state"] == "started"]
    assert phases == ["flatpack", "api", "snapshot", "stream"]

    async def registered() -> Any:
        return await read_entries(settings)

    (entry,) = await poll(registered, timeout_s=60)  # the stream phase keeps it streaming
    assert (entry.symbol, entry.strategy) == ("AAPL", "flatpack+api+snapshot+stream")


async def test_timestamp_updates_per_phase(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    await send_commands(settings, [RegistryCommand(op="add", symbol="AAPL",
                                                   strategy="api+snapshot")])  # fmt: skip
    start_worker()
    await poll(lambda: _registered(settings, 1), timeout_s=60)
    (before,) = await read_entries(settings)
    assert before.last_backfill is None and before.last_snapshot is None
    await run(producer, settings, "ts-1")

    async def updated() -> Any:
        (entry,) = await read_entries(settings)
        return entry if entry.last_snapshot is not None else None

    entry = await poll(updated, timeout_s=60)
    assert entry.last_backfill is not None and entry.last_snapshot is not None
    assert entry.last_backfill <= entry.last_snapshot
    assert entry.last_stream is None and entry.status == "idle"


async def test_strategy_validation(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """Invalid strategies are dead-lettered with a reason, from requests and registry alike."""
    start_worker()
    for rid, strategy in (("bad-1", "api+api"), ("bad-2", "flatpack+ftp"), ("bad-3", "")):
        doc = {"request_id": rid, "symbols": ["AAPL"], "strategy": strategy}
        await producer.send_and_wait(settings.topic("control"), key=rid.encode(),
                                     value=orjson.dumps(doc))  # fmt: skip
    await producer.send_and_wait(
        settings.topic("registry"), key=b"AAPL",
        value=orjson.dumps({"op": "add", "symbol": "AAPL", "strategy": "snapshot+snapshot"}),
    )  # fmt: skip
    dead = await consume(settings, settings.topic("dlq"), until=lambda r: len(r) >= 4)
    reasons = {r.key: dict(r.headers)["chronox-reason"] for r in dead}
    assert reasons == {b"bad-1": b"invalid_strategy", b"bad-2": b"invalid_strategy",
                       b"bad-3": b"invalid_strategy", b"AAPL": b"invalid_strategy"}  # fmt: skip
