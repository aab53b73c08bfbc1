"""Registry agent: the single writer of the registry table, applying commands in order."""

from __future__ import annotations

from chronox_stream.domain.registry import apply, parse_command
from chronox_stream.runtime.app import Runtime


def attach(runtime: Runtime) -> None:
    table = runtime.tables.registry

    async def apply_command(raw: bytes | None) -> None:
        command = parse_command(raw or b"")
        table.put(apply(table.get(command.symbol), command), command.symbol)

    runtime.settle_each(
        runtime.topics.registry, "chronox.agents.registry", "registry command", apply_command
    )
