"""The dedup table: dedup_key -> what was last emitted for it (9 bytes)."""

from __future__ import annotations

from typing import Any

import faust

from chronox_stream.bars import Bar, Source
from chronox_stream.dedup import Emitted, admit
from chronox_stream.envelope import dedup_key_of
from tables.raw import raw_table

NAME = "dedup"


class DedupTable:
    def __init__(self, app: faust.App, *, partitions: int) -> None:
        self.table: Any = raw_table(app, NAME, partitions=partitions)

    def admit(self, bar: Bar, source: Source, *, record: bool = True) -> bool:
        """True if ``bar`` should be emitted; records it unless ``record`` is False (dry runs)."""
        key = dedup_key_of(bar).encode()
        raw = self.table.get(key)
        state = admit(Emitted.from_bytes(raw) if raw else None, bar, source)
        if state is None:
            return False
        if record:
            self.table[key] = state.to_bytes()
        return True
