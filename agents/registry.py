"""Registry agent: the single writer of the registry table, applying commands in order."""

from __future__ import annotations

from typing import Any

from chronox_stream.app import Runtime
from chronox_stream.registry import apply, parse_command
from chronox_stream.rejects import Rejected


def attach(runtime: Runtime) -> None:
    table = runtime.tables.registry

    @runtime.app.agent(runtime.topics.registry, name="chronox.agents.registry", concurrency=1)
    async def registry(stream: Any) -> None:
        async for event in stream.events():
            try:
                command = parse_command(event.value)
            except Rejected as rejected:
                await runtime.dead_letter(event.message, rejected)
                continue
            table.put(apply(table.get(command.symbol), command), command.symbol)
