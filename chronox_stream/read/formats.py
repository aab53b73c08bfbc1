"""Bars as people and scripts read them: a table, CSV, JSON, Parquet.

Every format has the same columns in the same order (``query.COLUMNS``, plus
``split_factor`` for adjusted bars). Times are the envelope's ``YYYY-MM-DDTHH:MM:SSZ``
in text formats and UTC timestamps in Parquet; a missing vwap or transaction count is
empty in CSV, ``null`` in JSON and Parquet. pyarrow is imported only for Parquet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from chronox_stream.contracts.envelope import format_ts


def bar_document(row: dict[str, Any]) -> dict[str, Any]:
    """One bar as JSON: the row, its ``ts`` as the envelope writes it."""
    return {**row, "ts": format_ts(row["ts"])}


def to_json(rows: Sequence[dict[str, Any]]) -> bytes:
    """A JSON array of :func:`bar_document` objects."""
    return orjson.dumps([bar_document(row) for row in rows])


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header line; numbers as Python writes them (round-trip exact)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        doc = bar_document(row)
        writer.writerow(["" if doc[c] is None else doc[c] for c in columns])
    return out.getvalue()


def to_text(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """The bars as ``csv`` or ``json`` text (ending with a newline)."""
    return to_csv(rows, columns) if fmt == "csv" else to_json(rows).decode() + "\n"


def to_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Table:
    """A rich table for a terminal (prices as stored, volume without decimals)."""
    table = Table(*columns, caption=f"{len(rows)} bar(s)")
    for row in rows:
        doc = bar_document(row)
        table.add_row(*("-" if doc[c] is None else _cell(c, doc[c]) for c in columns))
    return table


def _cell(column: str, value: Any) -> str:
    if column == "volume" and isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return str(value)


def write_parquet(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    """A Parquet file of the bars, typed (``ts`` a UTC timestamp, prices doubles)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"symbol": pa.string(), "tf": pa.string(), "ts": pa.timestamp("us", tz="UTC"),
             "transactions": pa.int64(), "source": pa.string(), "revision": pa.int32()}  # fmt: skip
    schema = pa.schema([(c, types.get(c, pa.float64())) for c in columns])
    table = pa.table({c: [row[c] for row in rows] for c in columns}, schema=schema)
    pq.write_table(table, path)
