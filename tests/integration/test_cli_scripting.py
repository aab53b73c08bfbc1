"""The `chronox` commands a script drives, against the real stack and one worker: JSON output
of ingest --wait, the registry and status; the dead letters listed, shown and replayed to
their topic; an unreachable Redis as its own exit code."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner, Result

from chronox_stream.cli import main
from chronox_stream.runtime.names import TopicNames
from chronox_stream.runtime.topics import read_to_end
from chronox_stream.settings import Settings
from tests.fixtures.sim import free_port
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, poll

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

#: Not JSON, with a terminal escape in it (shown escaped, never raw).
POISON = b'{"request_id": "r-poison", "symbols": ["AAPL"] \x1b[2J'


async def cli(settings: Settings, *args: str) -> Result:
    """``chronox ARGS`` in this process (a thread of its own), with ``settings`` as its
    environment."""
    env = settings.to_env()
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def cli_json(settings: Settings, *args: str) -> Any:
    result = await cli(settings, *args, "--json")
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


async def test_a_script_drives_the_group_and_replays_a_dead_letter(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    start_worker()
    names = TopicNames.for_settings(settings)

    outcome = await cli_json(settings, "ingest", "--symbols", "AAPL", "--strategy", "snapshot",
                             "--dry-run", "--wait", "--timeout", "120")  # fmt: skip
    assert outcome["complete"] is True and outcome["dry_run"] is True
    assert outcome["phases"] == [{"symbol": "AAPL", "phase": "snapshot", "state": "done"}]
    assert outcome["failures"] == [] and outcome["finished"] == ["AAPL"]

    sent = await cli_json(settings, "registry", "add", "MSFT", "NVDA", "--strategy", "api")
    assert sent == {"op": "add", "symbols": ["MSFT", "NVDA"], "topic": names.registry,
                    "strategy": "api", "enabled": True}  # fmt: skip
    confirmation = await cli(settings, "registry", "disable", "NVDA")
    assert confirmation.stdout == "sent disable for 1 symbol(s): NVDA\n"

    async def registered() -> Any:
        entries = (await cli_json(settings, "registry", "list"))["symbols"]
        return entries if {e["symbol"]: e["enabled"] for e in entries} == {
            "MSFT": True, "NVDA": False} else None  # fmt: skip

    entries = await poll(registered, timeout_s=60)
    assert entries and entries[0]["strategy"] == "api", "the worker applied both commands"
    async def committed() -> Any:  # Faust commits the agents' offsets every few seconds
        status = await cli_json(settings, "status")
        return status if isinstance(status["lag"]["agents"], int) else None

    status = await poll(committed, timeout_s=60)
    assert status, "the agents' group has committed"
    assert [s["symbol"] for s in status["symbols"]] == ["MSFT", "NVDA"]

    poisoned = await producer.send_and_wait(names.control, key=b"r-poison", value=POISON)
    await consume(settings, names.dlq, until=lambda r: len(r) >= 1)
    (letter,) = (await cli_json(settings, "dlq", "list"))["records"]
    assert letter["reason"] == "invalid_json"
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
        names.control, poisoned.partition, poisoned.offset)  # fmt: skip
    assert letter["replayed_at"] == []
    assert (await cli_json(settings, "dlq", "list", "--topic", names.ticks_raw))["records"] == []

    listed = await cli(settings, "dlq", "list", "--reason", "invalid_json")
    (line,) = listed.stdout.splitlines()
    assert line.startswith(letter["id"]) and names.control in line and "invalid_json" in line
    shown = await cli(settings, "dlq", "show", letter["id"])
    assert "value:     " + POISON.decode().replace("\x1b", "\\x1b") in shown.stdout
    assert "\x1b" not in shown.stdout
    full = await cli_json(settings, "dlq", "show", letter["id"])
    assert full["value"] == {"encoding": "utf-8", "data": POISON.decode()}

    control_before = len(await read_to_end(settings, names.control))
    dry = await cli(settings, "dlq", "replay", letter["id"], "--dry-run")
    assert f"would send {letter['id']} -> {names.control}[{poisoned.partition}]" in dry.stdout
    assert len(await read_to_end(settings, names.control)) == control_before, "a dry run sends none"

    replayed = await cli(settings, "dlq", "replay", "--reason", "invalid_json")
    assert replayed.exit_code == 0, replayed.output
    assert "1 record(s) sent, 0 skipped" in replayed.stdout
    again = [r for r in await read_to_end(settings, names.control)
             if r.partition == poisoned.partition and r.offset > poisoned.offset]  # fmt: skip
    assert [(r.key, r.value) for r in again] == [(b"r-poison", POISON)]
    # Nothing was fixed: the worker dead-letters the replayed record in its turn.
    dead = await consume(settings, names.dlq, until=lambda r: len(r) >= 3)
    letters = (await cli_json(settings, "dlq", "list"))["records"]
    assert len(dead) == 3 and len(letters) == 2, "two dead letters and one replay marker"
    first, second = letters
    assert first["id"] == letter["id"] and len(first["replayed_at"]) == 1
    assert (second["source_offset"], second["replayed_at"]) == (again[0].offset, [])

    repeat = await cli(settings, "dlq", "replay", letter["id"])
    assert "skipped " + letter["id"] + ": replayed before at" in repeat.stdout
    assert "0 record(s) sent, 1 skipped" in repeat.stdout


async def test_an_unreachable_redis_is_exit_code_5(stack: Settings) -> None:
    tag = uuid.uuid4().hex[:10]
    closed = f"redis://:redis-pass-{tag}@127.0.0.1:{free_port()}/0"
    settings = stack.with_overrides(topic_prefix=f"t{tag}", app_id=f"chronox-test-{tag}",
                                    redis_url=closed)  # fmt: skip
    result = await cli(settings, "status")
    assert result.exit_code == 5, result.output
    (line,) = result.stderr.splitlines()
    masked = closed.replace(f"redis-pass-{tag}", "***")
    assert line.startswith(f"Error: cannot reach Redis at {masked} (ConnectionError")
    assert f"redis-pass-{tag}" not in result.output
