"""A fetched bar whose envelope the sinks would refuse is dead-lettered where it was
fetched, with the sinks' reason and message, and never published; the rest of its fetch
is (``tests/fixtures/mangled_source.py`` spoils two bars of a REST fetch)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.client.registry import read_entries, send_commands
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.settings import Settings
from tests.fixtures import mangled_source
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, fetch_rows, poll, wait_finished

pytestmark = pytest.mark.integration

MANGLED = mangled_source.SPEC


@pytest.mark.timeout(300)
async def test_a_bar_no_envelope_may_carry_is_dead_lettered_at_its_source(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    await send_commands(settings, [RegistryCommand(op="add", symbol="AAPL",
                                                   strategy=MANGLED.name)])  # fmt: skip
    start_worker(source_modules=mangled_source.__name__)

    async def registered() -> Any:
        return await read_entries(settings) or None

    assert await poll(registered, timeout_s=60)
    rid = "mangled-1"
    doc = {"request_id": rid, "start": "2024-01-16", "end": "2024-01-16"}
    await producer.send_and_wait(settings.topic("control"), key=rid.encode(),
                                 value=orjson.dumps(doc))  # fmt: skip
    events = await wait_finished(settings, rid, timeout_s=180)
    (emitted,) = [e["count"] for e in events if e["state"] == "done"]
    assert emitted > 300

    dead = await consume(settings, settings.topic("dlq"), until=lambda r: len(r) >= 2,
                         timeout_s=60)  # fmt: skip
    assert len(dead) == 2
    letters = [(dict(r.headers)["chronox-reason"], r.key, orjson.loads(r.value)) for r in dead]
    assert {(reason, key) for reason, key, _ in letters} == {(b"invalid_envelope", b"AAPL")}
    assert not [r for r in dead if "chronox-source-topic" in dict(r.headers)], (
        "refused where fetched, not by a sink reading a topic"
    )
    spoiled = sorted((doc["ohlcv"]["high"], doc["features"].get("vwap")) for _, _, doc in letters)
    assert spoiled[1][0] == mangled_source.SPOILED_HIGH
    assert spoiled[0][1] == mangled_source.SPOILED_VWAP

    async def stored() -> Any:
        rows = await fetch_rows(settings, "SELECT high, vwap FROM {schema}.bars")
        return rows if len(rows) >= emitted else None

    rows = await poll(stored, timeout_s=60)
    assert len(rows) == emitted, "every other bar of the fetch is stored"
    assert all(r["high"] < mangled_source.SPOILED_HIGH and r["vwap"] >= 0 for r in rows)
    published = await consume(settings, settings.topic("bars.1m"), until=lambda r: False,
                              timeout_s=3)  # fmt: skip
    assert len(published) == emitted, "the spoiled bars were never published"
