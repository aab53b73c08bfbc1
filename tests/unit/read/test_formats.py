"""The output formats of ``chronox bars``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from rich.console import Console

from chronox_stream.read.formats import to_csv, to_json, to_table, write_parquet
from chronox_stream.read.query import COLUMNS

ROWS = [
    {"symbol": "AAPL", "tf": "1m", "ts": datetime(2024, 1, 10, 14, 30, tzinfo=UTC),
     "open": 185.1, "high": 185.9, "low": 184.95, "close": 185.5, "volume": 120345.0,
     "vwap": 185.4321, "transactions": 812, "source": "api", "revision": 1},
    {"symbol": "AAPL", "tf": "1m", "ts": datetime(2024, 1, 10, 14, 31, tzinfo=UTC),
     "open": 0.1 + 0.2, "high": 1.0, "low": 0.25, "close": 0.5, "volume": 10.0,
     "vwap": None, "transactions": None, "source": "flatpack", "revision": 2},
]  # fmt: skip


def test_csv_has_a_header_exact_numbers_and_empty_missing_fields() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(ROWS, COLUMNS))))
    assert rows[0] == list(COLUMNS)
    assert rows[1][:4] == ["AAPL", "1m", "2024-01-10T14:30:00Z", "185.1"]
    assert float(rows[2][3]) == 0.1 + 0.2  # the stored double, to the last bit
    assert rows[2][8:10] == ["", ""]


def test_json_is_an_array_of_bars_with_envelope_times() -> None:
    docs = orjson.loads(to_json(ROWS))
    assert [d["ts"] for d in docs] == ["2024-01-10T14:30:00Z", "2024-01-10T14:31:00Z"]
    assert docs[1]["vwap"] is None and docs[0]["transactions"] == 812


def test_parquet_is_typed(tmp_path: Path) -> None:
    write_parquet(ROWS, COLUMNS, tmp_path / "bars.parquet")
    table = pq.read_table(tmp_path / "bars.parquet")
    assert table.column_names == list(COLUMNS)
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert table.to_pylist()[0]["ts"] == ROWS[0]["ts"]
    assert table.to_pylist()[1]["vwap"] is None


def test_table_shows_every_bar() -> None:
    console = Console(width=250, record=True)
    console.print(to_table(ROWS, COLUMNS))
    text = console.export_text()
    assert "2024-01-10T14:31:00Z" in text and "120345" in text and "2 bar(s)" in text
