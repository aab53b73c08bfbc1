"""Registry agent: the single writer of the registry table, applying commands in order."""

from __future__ import annotations

from functools import partial
from typing import Any

from chronox_stream.domain.registry import apply, parse_command
from chronox_stream.runtime.app import Runtime
from chronox_stream.runtime.retry import settle


def attach(runtime: Runtime) -> None:
    table = runtime.tables.registry

    async def apply_command(raw: bytes | None) -> None:
        command = parse_command(raw or b"")
        table.put(apply(table.get(command.symbol), command), command.symbol)

    @runtime.app.agent(runtime.topics.registry, name="chronox.agents.registry", concurrency=1)
    async def registry(stream: Any) -> None:
        async for event in stream.events():
            await settle(
                "registry command",
                partial(apply_command, event.value),
                partial(runtime.dead_letter, event.message),
            )
