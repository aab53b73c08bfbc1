"""Parsing Polygon aggregate flat files (CSV.gz) with pyarrow, not a Python loop per cell.

Header: ``ticker,volume,open,close,high,low,window_start,transactions``, with
``window_start`` in nanoseconds. Known faults of real files are handled here:
duplicate rows are dropped, and rows with a missing field or an absurd
``window_start`` (outside the file's own day, give or take a day) are skipped
and counted, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from chronox_stream.bars import Bar, ms_to_utc

COLUMNS = ("ticker", "volume", "open", "close", "high", "low", "window_start", "transactions")
_TYPES = {
    "ticker": pa.string(),
    "volume": pa.float64(),
    "open": pa.float64(),
    "close": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "window_start": pa.int64(),
    "transactions": pa.int64(),
}
_NS_PER_DAY = 86_400 * 10**9
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class ParsedDay:
    """The rows of the requested symbols in one day's file, sorted by (ticker, window_start)."""

    table: pa.Table
    skipped: int

    def bars(self, tf: str = "1m") -> list[Bar]:
        """The rows as bars (1m for minute files, 1d for day files)."""
        return _to_bars(self.table, tf)

    def bars_of(self, symbol: str, tf: str) -> list[Bar]:
        """The rows of one symbol as bars."""
        return _to_bars(self.table.filter(pc.equal(self.table.column("ticker"), symbol)), tf)


def _to_bars(table: pa.Table, tf: str) -> list[Bar]:
    cols = {name: table.column(name).to_pylist() for name in COLUMNS}
    return [
        Bar(
            symbol=cols["ticker"][i],
            tf=tf,
            ts=ms_to_utc(cols["window_start"][i] // 1_000_000),
            open=cols["open"][i],
            high=cols["high"][i],
            low=cols["low"][i],
            close=cols["close"][i],
            volume=cols["volume"][i],
            transactions=cols["transactions"][i],
        )
        for i in range(table.num_rows)
    ]


def parse_aggregates(data: bytes, *, day: date, symbols: Iterable[str] | None) -> ParsedDay:
    """Parse one aggregates file of ``day`` (gzip or plain); keep ``symbols`` only (None: all)."""
    try:
        table = _read(data, _TYPES)
    except pa.ArrowInvalid:
        table = _read_tolerant(data)
    if symbols is not None:
        wanted = pa.array(sorted(set(symbols)), type=pa.string())
        table = table.filter(pc.is_in(table.column("ticker"), value_set=wanted))
    kept = table.filter(_plausible(table, day))
    kept = kept.group_by(list(COLUMNS), use_threads=False).aggregate([])
    kept = kept.select(list(COLUMNS)).sort_by(
        [("ticker", "ascending"), ("window_start", "ascending")]
    )
    return ParsedDay(kept, skipped=table.num_rows - kept.num_rows)


def _read(data: bytes, types: dict[str, pa.DataType]) -> pa.Table:
    source = pa.BufferReader(data)
    stream = pa.CompressedInputStream(source, "gzip") if data[:2] == GZIP_MAGIC else source
    return pacsv.read_csv(
        stream,
        convert_options=pacsv.ConvertOptions(
            column_types=types, include_columns=list(COLUMNS), strings_can_be_null=True
        ),
    )


def _read_tolerant(data: bytes) -> pa.Table:
    """Slow path for a file whose ``window_start`` does not fit int64: such rows become null."""
    table = _read(data, {**_TYPES, "window_start": pa.string()})
    raw = table.column("window_start")
    fits = pc.match_substring_regex(raw, r"^(-?[0-9]{1,18}|[0-8][0-9]{18})$")
    starts = pc.cast(pc.if_else(fits, raw, pa.scalar(None, pa.string())), pa.int64())
    return table.set_column(COLUMNS.index("window_start"), "window_start", starts)


def _plausible(table: pa.Table, day: date) -> pa.ChunkedArray:
    """Rows with every OHLCV field present and a window start within a day of ``day``."""
    mask = pc.is_valid(table.column(COLUMNS[0]))
    for name in COLUMNS[1:7]:
        mask = pc.and_(mask, pc.is_valid(table.column(name)))
    midnight_ns = int(datetime.combine(day, time.min, tzinfo=UTC).timestamp()) * 10**9
    starts = table.column("window_start")
    in_range = pc.and_(
        pc.greater_equal(starts, midnight_ns - _NS_PER_DAY),
        pc.less(starts, midnight_ns + 2 * _NS_PER_DAY),
    )
    return pc.and_(mask, pc.fill_null(in_range, False))
