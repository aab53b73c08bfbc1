"""The leader's daemon: stale running states are reset, registered symbols kept current."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from chronox_stream.client.registry import read_entries, send_commands
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, poll

pytestmark = pytest.mark.integration


async def test_the_leader_resets_stale_runs_and_schedules_registry_runs(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    await send_commands(settings, [
        RegistryCommand(op="add", symbol="AAPL", strategy="api"),
        RegistryCommand(op="add", symbol="MSFT", strategy="api", enabled=False),
        RegistryCommand(op="running", symbol="MSFT"),  # as a worker that died left it
    ])  # fmt: skip
    start_worker(scheduler_interval_s=3)

    async def reset() -> Any:
        entries = {e.symbol: e for e in await read_entries(settings)}
        return entries if entries.get("MSFT") and entries["MSFT"].status == "idle" else None

    assert await poll(reset, timeout_s=60), "the stale running state was not reset"

    def two_daemon_runs(records: list[Any]) -> bool:
        finished = [orjson.loads(r.value) for r in records if r.key.startswith(b"daemon-")]
        return len({e["request_id"] for e in finished if e["state"] == "finished"}) >= 2

    records = await consume(settings, settings.topic("status"), until=two_daemon_runs,
                            timeout_s=120)  # fmt: skip
    events = [orjson.loads(r.value) for r in records if r.key.startswith(b"daemon-")]
    assert {e["symbol"] for e in events if e["state"] == "finished"} == {"AAPL"}, (
        "enabled symbols only"
    )
    assert {e["phase"] for e in events if e["state"] == "done"} == {"api"}, "their strategy"
