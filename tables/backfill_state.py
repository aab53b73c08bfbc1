"""The backfill state table: ``SYMBOL|tf`` -> Coverage (covered ranges, last backfill)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust

from chronox_stream.domain.coverage import Coverage
from chronox_stream.domain.gaps import Interval
from chronox_stream.runtime.names import BACKFILL_STATE_TABLE
from chronox_stream.tables.raw import raw_table


class BackfillStateTable:
    def __init__(
        self, app: faust.App, *, partitions: int, topic_config: Mapping[str, str] | None = None
    ) -> None:
        self.table: Any = raw_table(app, BACKFILL_STATE_TABLE, partitions=partitions,
                                    topic_config=topic_config)  # fmt: skip

    def get(self, symbol: str, tf: str) -> Coverage:
        raw = self.table.get(f"{symbol}|{tf}".encode())
        return Coverage.from_bytes(raw) if raw else Coverage()

    def mark_fetched(self, symbol: str, tf: str, window: Interval) -> Coverage:
        """Checkpoint one fetched window; returns the new coverage."""
        coverage = self.get(symbol, tf).with_fetched(window)
        self.table[f"{symbol}|{tf}".encode()] = coverage.to_bytes()
        return coverage
