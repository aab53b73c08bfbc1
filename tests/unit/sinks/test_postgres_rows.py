"""The rows the PostgreSQL sink COPYs: one per primary key, in the table's column order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from chronox_stream.domain.bars import Bar
from chronox_stream.sinks.postgres import copy_rows

FLAT = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 2, 15, tzinfo=UTC),
           open=1, high=2, low=0.5, close=1.5, volume=100, transactions=7)  # fmt: skip
API = replace(FLAT, vwap=1.25)
NEXT = replace(FLAT, ts=datetime(2024, 1, 2, 15, 1, tzinfo=UTC), close=1.7)


def test_a_batch_without_repeated_keys_gives_one_row_per_bar_in_order() -> None:
    assert copy_rows([(NEXT, "api"), (FLAT, "flatpack")]) == [
        ("AAPL", "1m", NEXT.ts, 1, 2, 0.5, 1.7, 100, None, 7, "api"),
        ("AAPL", "1m", FLAT.ts, 1, 2, 0.5, 1.5, 100, None, 7, "flatpack"),
    ]


def test_the_bars_of_a_repeated_key_are_merged_into_one_row() -> None:
    # the api's bar enriches the flat file's (vwap), which keeps its source: one row for the
    # minute, as the table would hold after the two bars one after the other
    rows = copy_rows([(FLAT, "flatpack"), (NEXT, "flatpack"), (API, "api")])
    assert rows == [
        ("AAPL", "1m", FLAT.ts, 1, 2, 0.5, 1.5, 100, 1.25, 7, "flatpack"),
        ("AAPL", "1m", NEXT.ts, 1, 2, 0.5, 1.7, 100, None, 7, "flatpack"),
    ]


def test_another_timeframe_or_symbol_is_another_key() -> None:
    other_tf, other_symbol = replace(FLAT, tf="5m"), replace(FLAT, symbol="MSFT")
    rows = copy_rows([(FLAT, "api"), (other_tf, "api"), (other_symbol, "api")])
    assert [row[:2] for row in rows] == [("AAPL", "1m"), ("AAPL", "5m"), ("MSFT", "1m")]


def test_a_key_that_comes_back_in_a_later_run_is_merged() -> None:
    # AAPL's minutes, then MSFT's, then AAPL's first minute again (the api's, with vwap)
    msft = replace(FLAT, symbol="MSFT")
    rows = copy_rows([(FLAT, "flatpack"), (NEXT, "flatpack"), (msft, "flatpack"), (API, "api")])
    assert [(row[0], row[2], row[8]) for row in rows] == [
        ("AAPL", FLAT.ts, 1.25), ("AAPL", NEXT.ts, None), ("MSFT", FLAT.ts, None),
    ]  # fmt: skip
