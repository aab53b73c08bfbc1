"""Validation of a bar query: what ``chronox bars`` and ``GET /v1/bars`` accept and refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.read.query import BarQuery, parse_query, query_sql

NOW = datetime(2024, 6, 3, 16, 0, tzinfo=UTC)


def parse(*symbols: str, tf: str = "1m", start: str | None = "2024-01-10",
          end: str | None = "2024-01-12", **options: object) -> BarQuery:  # fmt: skip
    return parse_query(symbols, tf, start, end, now=NOW, max_rows=1000, **options)  # type: ignore[arg-type]


def test_dates_are_new_york_trading_dates_and_the_end_date_is_whole() -> None:
    query = parse("AAPL", "BRK.B", "AAPL")
    assert query.symbols == ("AAPL", "BRK.B")
    # Winter: New York is UTC-5; the 12th ends at the 13th's New York midnight.
    assert query.start == datetime(2024, 1, 10, 5, tzinfo=UTC)
    assert datetime(2024, 1, 13, 4, 59, tzinfo=UTC) < query.end < datetime(2024, 1, 13, 5,
                                                                            tzinfo=UTC)


def test_instants_keep_their_meaning_and_missing_bounds_default() -> None:
    query = parse("AAPL", start="2024-01-10T14:30:00Z", end="2024-01-10T10:00:00-05:00")
    assert (query.start, query.end) == (datetime(2024, 1, 10, 14, 30, tzinfo=UTC),
                                        datetime(2024, 1, 10, 15, 0, tzinfo=UTC))  # fmt: skip
    open_ended = parse("AAPL", start=None, end=None)
    assert open_ended.start == datetime(1970, 1, 1, tzinfo=UTC) and open_ended.end == NOW


@pytest.mark.parametrize(
    ("symbols", "options", "reason"),
    [
        (("aapl",), {}, "invalid_symbol"),
        (("AAPL\n",), {}, "invalid_symbol"),
        (("TOOLONGSYMBOL1",), {}, "invalid_symbol"),
        ((), {}, "invalid_symbol"),
        (("AAPL",), {"tf": "2m"}, "invalid_timeframe"),
        (("AAPL",), {"start": "2024-01-12", "end": "2024-01-11"}, "invalid_range"),
        (("AAPL",), {"start": "2024-01-10T10:00:00Z", "end": "2024-01-10T10:00:00Z"},
         "invalid_range"),
        (("AAPL",), {"start": "2024-01-10T10:00:00"}, "invalid_range"),  # no zone
        (("AAPL",), {"start": "last week"}, "invalid_range"),
        (("AAPL",), {"latest": 0}, "out_of_range"),
        (("AAPL",), {"latest": 1001}, "out_of_range"),
    ],
)
def test_refusals_carry_a_reason(symbols: tuple[str, ...], options: dict[str, object],
                                 reason: str) -> None:  # fmt: skip
    with pytest.raises(Rejected) as refused:
        parse(*symbols, **options)  # type: ignore[arg-type]
    assert refused.value.reason == reason


def test_adjusted_queries_read_the_view_and_latest_the_newest_rows() -> None:
    raw = query_sql("my schema", parse("AAPL"))
    assert 'FROM "my schema".bars ' in raw and "ORDER BY symbol, ts" in raw
    adjusted = query_sql("chronox", parse("AAPL", adjusted=True, latest=5))
    assert 'FROM "chronox".bars_adjusted ' in adjusted and "split_factor" in adjusted
    assert "ORDER BY ts DESC" in adjusted
