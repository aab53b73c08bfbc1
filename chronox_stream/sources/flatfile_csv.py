"""Parsing Polygon aggregate flat files (CSV.gz) with pyarrow, not a Python loop per cell.

Header: ``ticker,volume,open,close,high,low,window_start,transactions``, with
``window_start`` in nanoseconds. Known faults of real files are handled here:
duplicate rows are dropped, and rows with a missing field, a cell that is not a
number, a value out of bounds (prices > 0 and at most ``MAX_PRICE``, a finite
volume >= 0, ``transactions`` >= 0 in int64) or an absurd ``window_start``
(outside the file's own day, give or take a day) are skipped and counted, never
fatal. What cannot be read as such a file at all (not gzip or CSV, a missing
column, a row of the wrong width, text that is not UTF-8) raises
:class:`FlatFileError`, and the flatpack phase reports it as failed.
Tickers are kept as written: :meth:`ParsedDay.bars_of` takes a valid symbol.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import reduce
from itertools import pairwise, repeat

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from chronox_stream.domain.bars import Bar, ms_to_utc, new_bar
from chronox_stream.domain.bounds import MAX_PRICE

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
#: The text of a cell that converts: a whole number within int64, or a decimal number.
_INT64_TEXT = r"^(-?[0-9]{1,18}|[0-8][0-9]{18})$"
_NUMBER_TEXT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"


class FlatFileError(ValueError):
    """The data is not a readable aggregates file (it names why)."""


@dataclass(frozen=True, slots=True)
class ParsedDay:
    """The rows of the requested symbols in one day's file, sorted by (ticker, window_start).

    ``spans`` says where each ticker's rows are (first row, row count), found once when
    the day is parsed: a market-wide file is read for many symbols, and filtering the
    whole table for each would cost symbols x rows. ``times`` holds the bar start of each
    ``window_start`` met so far: the symbols of a day share their minutes, so each start
    is made once a day, not once a bar (a day file has at most a few thousand).
    """

    table: pa.Table
    skipped: int
    spans: dict[str, tuple[int, int]] = field(init=False, repr=False, compare=False)
    times: dict[int, datetime] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spans", _spans(self.table.column("ticker")))
        object.__setattr__(self, "times", {})

    def bars(self, tf: str = "1m") -> list[Bar]:
        """The rows as bars (1m for minute files, 1d for day files)."""
        return _to_bars(self.table, tf, self.times, None)

    def bars_of(self, symbol: str, tf: str) -> list[Bar]:
        """The rows of one symbol as bars."""
        first, count = self.spans.get(symbol, (0, 0))
        return _to_bars(self.table.slice(first, count), tf, self.times, symbol)


def _spans(tickers: pa.ChunkedArray) -> dict[str, tuple[int, int]]:
    """First row and row count of each ticker in a column sorted by ticker."""
    runs = pc.run_end_encode(tickers.combine_chunks())
    bounds = pairwise([0, *runs.run_ends.to_pylist()])
    return {
        ticker: (start, end - start)
        for ticker, (start, end) in zip(runs.values.to_pylist(), bounds, strict=True)
    }


def _to_bars(
    table: pa.Table, tf: str, times: dict[int, datetime], symbol: str | None
) -> list[Bar]:
    """The rows as bars; ``symbol``, when given, is every row's ticker (one string for all
    rather than one per row)."""
    cols = {name: table.column(name).to_pylist() for name in COLUMNS[1:]}
    rows = table.num_rows
    tickers = table.column("ticker").to_pylist() if symbol is None else repeat(symbol, rows)
    for ns in cols["window_start"]:
        if ns not in times:
            times[ns] = ms_to_utc(ns // 1_000_000)
    return [
        new_bar(ticker, tf, times[ns], open_, high, low, close, volume, None, transactions)
        for ticker, volume, open_, close, high, low, ns, transactions in zip(
            tickers, *(cols[name] for name in COLUMNS[1:]), strict=True)
    ]  # fmt: skip


def parse_aggregates(data: bytes, *, day: date, symbols: Iterable[str] | None) -> ParsedDay:
    """Parse one aggregates file of ``day`` (gzip or plain); keep ``symbols`` only (None: all).

    ``FlatFileError`` if ``data`` cannot be read as one; faulty rows are skipped and counted.
    """
    try:
        try:
            table = _read(data, _TYPES)
        except pa.ArrowInvalid:
            table = _read_tolerant(data)
    except (pa.ArrowException, OSError) as exc:  # OSError: a broken gzip stream
        raise FlatFileError(f"not a readable aggregates file: {str(exc)[:200]}") from None
    if symbols is not None:
        wanted = pa.array(sorted(set(symbols)), type=pa.string())
        table = table.filter(pc.is_in(table.column("ticker"), value_set=wanted))
    kept = table.filter(_plausible(table, day))
    ordered = kept.select(list(COLUMNS)).sort_by(_ORDER)
    if _repeats_a_key(ordered):  # duplicate rows possible: drop them (a grouping: slower)
        kept = kept.group_by(list(COLUMNS), use_threads=False).aggregate([])
        ordered = kept.select(list(COLUMNS)).sort_by(_ORDER)
    return ParsedDay(ordered, skipped=table.num_rows - ordered.num_rows)


_ORDER = [("ticker", "ascending"), ("window_start", "ascending")]


def _repeats_a_key(table: pa.Table) -> bool:
    """Whether two rows of ``table`` (sorted by ticker and window start, neither null)
    share their ticker and window start. When none do, no row is a duplicate, and the
    grouping that drops duplicates (a fifth of a day file's parse) is skipped."""
    if table.num_rows < 2:
        return False
    same = [
        pc.equal(column.slice(1), column.slice(0, table.num_rows - 1))
        for column in (table.column("ticker"), table.column("window_start"))
    ]
    return bool(pc.any(pc.and_(*same)).as_py())


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
    """Slow path for a file with a cell that does not convert (text where a number belongs,
    a ``window_start`` beyond int64): such a cell becomes null, and the extra column
    ``readable`` marks its row for skipping (an empty ``transactions`` cell is no fault)."""
    table = _read(data, {name: pa.string() for name in COLUMNS})
    converts = []
    for name, kind in _TYPES.items():
        if kind == pa.string():
            continue
        text = table.column(name)
        fits = pc.match_substring_regex(text, _INT64_TEXT if kind == pa.int64() else _NUMBER_TEXT)
        converts.append(pc.fill_null(fits, True))
        values = pc.cast(pc.if_else(fits, text, pa.scalar(None, pa.string())), kind)
        table = table.set_column(COLUMNS.index(name), name, values)
    return table.append_column("readable", reduce(pc.and_, converts))


def _plausible(table: pa.Table, day: date) -> pa.ChunkedArray:
    """Rows with every OHLCV field present and within bounds, and a window start within a
    day of ``day``."""
    mask = pc.is_valid(table.column(COLUMNS[0]))
    for name in ("open", "close", "high", "low"):
        price = table.column(name)
        mask = pc.and_(mask, pc.and_(pc.greater(price, 0.0), pc.less_equal(price, MAX_PRICE)))
    volume = table.column("volume")
    mask = pc.and_(mask, pc.and_(pc.greater_equal(volume, 0.0), pc.is_finite(volume)))
    transactions = pc.fill_null(pc.greater_equal(table.column("transactions"), 0), True)
    mask = pc.and_(mask, transactions)
    midnight_ns = int(datetime.combine(day, time.min, tzinfo=UTC).timestamp()) * 10**9
    starts = table.column("window_start")
    in_range = pc.and_(
        pc.greater_equal(starts, midnight_ns - _NS_PER_DAY),
        pc.less(starts, midnight_ns + 2 * _NS_PER_DAY),
    )
    if "readable" in table.column_names:
        mask = pc.and_(mask, table.column("readable"))
    return pc.fill_null(pc.and_(mask, in_range), False)
