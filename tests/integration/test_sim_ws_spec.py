"""The simulator's WebSocket messages against Polygon's WebSocket spec.

The spec is the repository's copy, ``tests/specs/polygon/websocket-spec-stocks.json``
(unmodified). Each channel (``/stocks/T``, ``/stocks/A``, ``/stocks/AM``) describes its event
as the schema of a ``200`` response; every event the simulator sends on a busy morning must
validate against it and carry no field the schema does not name. One deliberate deviation:
the spec's ``ConnectEvent`` says ``"status": "success"`` while Polygon (and the simulator)
send ``"connected"``; a test pins that this is the only difference of the handshake.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openapi_schema_validator import OAS30Validator

from tests.fixtures.sim import SimFactory

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[1] / "specs" / "polygon" / "websocket-spec-stocks.json"
MORNING = "2024-01-16T15:00:00Z"  # 10:00 New York
CHANNELS = ("T", "A", "AM")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC.read_text()))


def validator(spec: dict[str, Any], pointer: str) -> OAS30Validator:
    """A validator of the schema at ``pointer`` (a JSON pointer into the spec)."""
    return OAS30Validator({**spec, "$ref": f"#{pointer}"})


def channel_pointer(channel: str) -> str:
    return f"/paths/~1stocks~1{channel}/get/responses/200/content/application~1json/schema"


def named_fields(spec: dict[str, Any], pointer: str) -> set[str]:
    """Every property a schema (with its ``allOf`` parts and ``$ref`` targets) names."""
    node: Any = spec
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    found: set[str] = set()
    stack = [node]
    while stack:
        schema = stack.pop()
        if "$ref" in schema:
            stack.append(_resolve(spec, schema["$ref"]))
        found.update(schema.get("properties", {}))
        stack.extend(schema.get("allOf", []))
    return found


def _resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return dict(node)


async def _events_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    found: list[Any] = []
    while (left := deadline - loop.time()) > 0:
        try:
            found.extend(await asyncio.wait_for(ws.receive_json(), left))
        except TimeoutError:
            break
    return found


async def test_events_and_statuses_follow_the_spec(
    spec: dict[str, Any], sim_factory: SimFactory
) -> None:
    market = await sim_factory(clock_start=MORNING, speed=0, flatfiles=False)
    components = "/components/schemas"
    async with aiohttp.ClientSession() as session, session.ws_connect(market.ws_url) as ws:
        [connected] = await ws.receive_json()
        errors = validator(spec, f"{components}/ConnectEvent").iter_errors(connected)
        assert [list(e.path) for e in errors] == [["status"]], "the spec's one wrong status"
        assert connected["status"] == "connected"
        await ws.send_json({"action": "auth", "params": market.api_key})
        [auth] = await ws.receive_json()
        validator(spec, f"{components}/AuthEvent").validate(auth)
        await ws.send_json({"action": "subscribe", "params": "T.*,A.*,AM.*"})
        for status in await ws.receive_json():
            validator(spec, f"{components}/SubscribeEvent").validate(status)
        await market.set_clock(speed=120)
        events = await _events_within(ws, 4.0)
        await market.set_clock(speed=0)
    by_channel = {channel: [e for e in events if e["ev"] == channel] for channel in CHANNELS}
    assert all(by_channel.values()), f"every channel sent events: {sorted(by_channel)}"
    assert sum(len(found) for found in by_channel.values()) == len(events)
    for channel, found in by_channel.items():
        check = validator(spec, channel_pointer(channel))
        fields = named_fields(spec, channel_pointer(channel))
        for event in found:
            check.validate(event)
            assert set(event) <= fields, f"{channel} field(s) the spec does not name"
