"""The dedup table: ``SYMBOL|tf|period`` -> what was emitted for each bar of that period."""

from __future__ import annotations

from typing import Any

import faust

from chronox_stream.bars import Bar, Source
from chronox_stream.dedup import Bucket, admit_batch, bucket_key, decode_bucket, encode_bucket
from tables.raw import raw_table

NAME = "dedup"


class DedupTable:
    def __init__(self, app: faust.App, *, partitions: int) -> None:
        self.table: Any = raw_table(app, NAME, partitions=partitions)

    def decide(self, bars: list[Bar], source: Source) -> tuple[list[Bar], dict[str, Bucket]]:
        """The bars to emit, and the state to ``record`` once they are on Kafka."""
        keys = {bucket_key(bar) for bar in bars}
        current = {key: decode_bucket(self.table.get(key.encode())) for key in keys}
        return admit_batch(bars, source, current)

    def record(self, buckets: dict[str, Bucket]) -> None:
        for key, bucket in buckets.items():
            self.table[key.encode()] = encode_bucket(bucket)
