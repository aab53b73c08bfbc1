"""The registry table: symbol -> RegistryEntry, global so every worker can plan registry runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import faust

from chronox_stream.domain.registry import RegistryEntry
from chronox_stream.runtime.names import REGISTRY_TABLE
from chronox_stream.tables.raw import raw_table


class RegistryTable:
    def __init__(
        self, app: faust.App, *, partitions: int, topic_config: Mapping[str, str] | None = None
    ) -> None:
        self.table: Any = raw_table(app, REGISTRY_TABLE, partitions=partitions, global_=True,
                                    topic_config=topic_config)  # fmt: skip

    def get(self, symbol: str) -> RegistryEntry | None:
        raw = self.table.get(symbol.encode())
        return RegistryEntry.from_json(raw) if raw else None

    def put(self, entry: RegistryEntry | None, symbol: str) -> None:
        """Store ``entry``; ``None`` removes the symbol."""
        if entry is None:
            self.table.pop(symbol.encode(), None)
        else:
            self.table[symbol.encode()] = entry.to_json()

    def entries(self) -> Iterator[RegistryEntry]:
        for raw in list(self.table.values()):
            if raw:
                yield RegistryEntry.from_json(raw)
