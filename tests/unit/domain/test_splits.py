"""Split records from Polygon: what is kept, what is skipped and why, what is no page at all;
and which symbols the leader refreshes."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import orjson
import pytest

from chronox_stream.domain.splits import (
    SplitRecord,
    due_symbols,
    parse_split_record,
    parse_splits_page,
)
from chronox_stream.sources.polygon_pages import MalformedPage

GOOD = {"id": "E1", "ticker": "NVDA", "execution_date": "2024-06-10", "split_from": 1,
        "split_to": 10}  # fmt: skip


def test_a_valid_record_is_kept_with_float_ratio_parts() -> None:
    assert parse_split_record(GOOD) == SplitRecord("NVDA", date(2024, 6, 10), 1.0, 10.0)
    fractional = {**GOOD, "split_from": 2, "split_to": 3.0}
    assert parse_split_record(fractional) == SplitRecord("NVDA", date(2024, 6, 10), 2.0, 3.0)
    assert parse_split_record({**GOOD, "ticker": "BRK.B"}) == SplitRecord(
        "BRK.B", date(2024, 6, 10), 1.0, 10.0
    )


@pytest.mark.parametrize(
    "change",
    [
        {"ticker": "nvda"}, {"ticker": "NVDA\n"}, {"ticker": 7}, {"ticker": None},
        {"execution_date": "2024-6-10"}, {"execution_date": "2024-02-30"},
        {"execution_date": 20240610}, {"execution_date": "2024-06-10T00:00:00Z"},
        {"split_from": 0}, {"split_to": -4}, {"split_to": "4"}, {"split_to": True},
        {"split_from": math.inf}, {"split_to": None},
    ],
)  # fmt: skip
def test_a_record_breaking_a_rule_is_skipped_with_a_reason(change: dict[str, Any]) -> None:
    reason = parse_split_record({**GOOD, **change})
    assert isinstance(reason, str) and reason
    assert all(str(v) not in reason for v in change.values() if v not in (None, True))


def test_a_page_keeps_the_good_records_and_counts_the_bad() -> None:
    body = {"status": "OK", "results": [GOOD, {**GOOD, "split_to": 0}, "x",
                                        {**GOOD, "ticker": "AAPL"}],
            "next_url": "https://api.polygon.io/v3/reference/splits?cursor=abc"}  # fmt: skip
    page = parse_splits_page("NVDA", orjson.dumps(body))
    assert page.records == [SplitRecord("NVDA", date(2024, 6, 10), 1.0, 10.0)]
    assert len(page.skipped) == 3 and page.skipped[0].startswith("results[1]")
    assert page.next_url == body["next_url"]
    empty = parse_splits_page("NVDA", b'{"status": "OK", "results": []}')
    assert empty.records == [] and empty.next_url is None


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[]", b'{"results": {}}', b'{"results": [], "next_url": 3}']
)
def test_a_body_that_is_no_page_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPage):
        parse_splits_page("NVDA", raw)


def test_symbols_are_due_when_new_stale_or_backfilled_since() -> None:
    refreshed = {"AAPL": 100.0, "MSFT": 100.0, "NVDA": 100.0}
    backfilled = {"MSFT": 150.0, "NVDA": 50.0}
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA"]
    assert due_symbols(symbols, refreshed, backfilled, 200.0, 1000.0) == ["MSFT", "TSLA"]
    assert due_symbols(symbols, refreshed, backfilled, 1100.0, 1000.0) == symbols
