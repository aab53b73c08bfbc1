"""Tables of raw bytes: values are our own compact encodings, reassigned on every change.

RocksDB is opened per table and partition, so its per-database buffers are
kept small here (Faust's defaults allow 2 GiB of block cache per database):
memory then grows with the data a worker touches, not with the table's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust

MIB = 1024 * 1024

#: Per-database RocksDB options (Faust's ``RocksDBOptions`` names).
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 8 * MIB,
    "max_write_buffer_number": 2,
    "target_file_size_base": 32 * MIB,
    "block_cache_size": 16 * MIB,
    "block_cache_compressed_size": 4 * MIB,
}


def raw_table(
    app: faust.App,
    name: str,
    *,
    partitions: int,
    global_: bool = False,
    topic_config: Mapping[str, str] | None = None,
) -> Any:
    """A table of bytes; ``topic_config`` is added to its (compacted) changelog's config
    should Faust be the one creating it."""
    factory = app.GlobalTable if global_ else app.Table
    return factory(
        name,
        default=None,
        partitions=partitions,
        key_type=bytes,  # bytes types make Faust use the raw codec
        value_type=bytes,
        options=dict(ROCKSDB_OPTIONS),
        extra_topic_configs=dict(topic_config or {}),
    )
