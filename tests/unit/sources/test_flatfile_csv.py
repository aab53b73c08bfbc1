"""Flat-file parsing: Polygon's header, ns timestamps, and the faults real files have."""

import gzip
from datetime import UTC, date, datetime

import pytest

from chronox_stream.sources.flatfile_csv import GZIP_MAGIC, FlatFileError, parse_aggregates

DAY = date(2024, 1, 16)
T0 = int(datetime(2024, 1, 16, 14, 30, tzinfo=UTC).timestamp()) * 10**9
MINUTE = 60 * 10**9
HEADER = "ticker,volume,open,close,high,low,window_start,transactions\n"


def csv(*rows: str) -> bytes:
    return gzip.compress((HEADER + "".join(r + "\n" for r in rows)).encode())


def test_rows_of_requested_symbols_become_minute_bars_in_order() -> None:
    data = csv(
        f"MSFT,200,390.1,390.5,390.9,390.0,{T0},12",
        f"AAPL,150,185.2,185.4,185.5,185.1,{T0 + MINUTE},9",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0},7",
        f"TSLA,50,220,221,222,219,{T0},3",
    )
    parsed = parse_aggregates(data, day=DAY, symbols=["AAPL", "MSFT"])
    bars = parsed.bars()
    assert [(b.symbol, b.ts.minute) for b in bars] == [("AAPL", 30), ("AAPL", 31), ("MSFT", 30)]
    first = bars[0]
    assert first.ts == datetime(2024, 1, 16, 14, 30, tzinfo=UTC)
    assert (first.open, first.high, first.low, first.close) == (185.0, 185.3, 184.9, 185.2)
    assert (first.volume, first.transactions, first.vwap) == (100, 7, None)
    assert parsed.skipped == 0


def test_duplicates_missing_fields_and_absurd_timestamps_are_skipped() -> None:
    data = csv(
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0},7",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0},7",
        f"AAPL,100,,185.2,185.3,184.9,{T0 + MINUTE},7",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0 * 100},7",
        "AAPL,100,185.0,185.2,185.3,184.9,,7",
    )
    parsed = parse_aggregates(data, day=DAY, symbols=["AAPL"])
    assert len(parsed.bars()) == 1
    assert parsed.skipped == 4


def test_plain_csv_and_all_symbols() -> None:
    data = (HEADER + f"A,1,1,1,1,1,{T0},1\nB,1,1,1,1,1,{T0},1\n").encode()
    assert {b.symbol for b in parse_aggregates(data, day=DAY, symbols=None).bars()} == {"A", "B"}


def test_the_bars_of_one_symbol_are_its_rows_only_in_time_order() -> None:
    data = csv(
        f"MSFT,200,390.1,390.5,390.9,390.0,{T0 + MINUTE},12",
        f"AAPL,150,185.2,185.4,185.5,185.1,{T0 + MINUTE},9",
        f"AA,1,10,10,10,10,{T0},1",
        f"MSFT,210,390.5,390.6,390.9,390.2,{T0},11",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0},7",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0},7",
        f"AAPLW,5,1,1,1,1,{T0},1",
        f"AAPL,100,,185.2,185.3,184.9,{T0 + 2 * MINUTE},7",
    )
    parsed = parse_aggregates(data, day=DAY, symbols=None)
    everything = parsed.bars()
    for symbol in ("AA", "AAPL", "AAPLW", "MSFT"):
        mine = parsed.bars_of(symbol, "1m")
        assert mine == [b for b in everything if b.symbol == symbol]
    assert [(b.ts.minute, b.volume) for b in parsed.bars_of("MSFT", "1m")] == [(30, 210), (31, 200)]
    assert [b.transactions for b in parsed.bars_of("AAPL", "1m")] == [7, 9]
    assert {b.tf for b in parsed.bars_of("AAPL", "1d")} == {"1d"}
    assert parsed.bars_of("TSLA", "1m") == [] and parsed.bars_of("AAP", "1m") == []
    empty = parse_aggregates(csv(), day=DAY, symbols=None)
    assert empty.bars_of("AAPL", "1m") == []


def test_rows_out_of_bounds_or_with_text_for_a_number_are_skipped() -> None:
    good = f"AAPL,100,185.0,185.2,185.3,184.9,{T0},7"
    data = csv(
        good,
        f"AAPL,100,inf,185.2,185.3,184.9,{T0 + MINUTE},7",
        f"AAPL,100,0,185.2,185.3,184.9,{T0 + 2 * MINUTE},7",
        f"AAPL,100,185.0,185.2,1e308,184.9,{T0 + 3 * MINUTE},7",
        f"AAPL,-100,185.0,185.2,185.3,184.9,{T0 + 4 * MINUTE},7",
        f"AAPL,nan,185.0,185.2,185.3,184.9,{T0 + 5 * MINUTE},7",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0 + 6 * MINUTE},-7",
        f"AAPL,100,abc,185.2,185.3,184.9,{T0 + 7 * MINUTE},7",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0 + 8 * MINUTE},99999999999999999999",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0 + 9 * MINUTE},",
    )
    parsed = parse_aggregates(data, day=DAY, symbols=["AAPL"])
    kept = parsed.bars()
    assert [b.ts.minute for b in kept] == [30, 39], "the first row, and one without a count"
    assert kept[1].transactions is None
    assert parsed.skipped == 8


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02",
        GZIP_MAGIC + b"not gzip at all",
        gzip.compress(HEADER.encode() + f"AAPL,1,1,1,1,1,{T0},1\n".encode(), mtime=0)[:-12],
        b"ticker,volume\nAAPL,1\n",
        (HEADER + f"AAPL,1,1,1,1,1,{T0},1,extra\n").encode(),
        HEADER.encode() + b"\xff\xfe,1,1,1,1,1,1,1\n",
    ],
)
def test_what_is_no_aggregates_file_raises_flat_file_error(data: bytes) -> None:
    with pytest.raises(FlatFileError):
        parse_aggregates(data, day=DAY, symbols=None)


def test_rows_of_one_minute_that_differ_all_stay_in_file_order_without_their_duplicates() -> None:
    data = csv(
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0},7",
        f"AAPL,120,185.1,185.2,185.3,184.9,{T0},8",
        f"AAPL,100,185.0,185.2,185.3,184.9,{T0},7",
        f"AAPL,90,185.2,185.4,185.5,185.1,{T0 + MINUTE},9",
    )
    parsed = parse_aggregates(data, day=DAY, symbols=None)
    assert [(b.ts.minute, b.volume) for b in parsed.bars_of("AAPL", "1m")] == [
        (30, 100), (30, 120), (31, 90)
    ]  # fmt: skip
    assert parsed.skipped == 1
