"""Tables of raw bytes: values are our own compact encodings, reassigned on every change."""

from __future__ import annotations

from typing import Any

import faust


def raw_table(app: faust.App, name: str, *, partitions: int, global_: bool = False) -> Any:
    factory = app.GlobalTable if global_ else app.Table
    return factory(
        name,
        default=None,
        partitions=partitions,
        key_type=bytes,  # bytes types make Faust use the raw codec
        value_type=bytes,
    )
