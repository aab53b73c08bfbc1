"""What a WebSocket outage costs: the windows refetched from REST, and not before they close."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from chronox_stream.control import parse_backfill_request
from chronox_stream.refill import Outage, refills


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


OUTAGE = Outage(ms("2024-01-16T15:02:40+00:00"), ms("2024-01-16T15:06:05+00:00"))


def test_every_window_the_outage_touched_is_refetched_per_timeframe() -> None:
    plans = {r.timeframe: r for r in refills(OUTAGE, ["1m", "5m", "1d"], ["MSFT", "AAPL"])}
    assert (plans["1m"].start_ms, plans["1m"].end_ms) == (
        ms("2024-01-16T15:02:00+00:00"),
        ms("2024-01-16T15:07:00+00:00"),
    )
    assert (plans["5m"].start_ms, plans["5m"].end_ms) == (
        ms("2024-01-16T15:00:00+00:00"),
        ms("2024-01-16T15:10:00+00:00"),
    )
    assert (plans["1d"].start_ms, plans["1d"].end_ms) == (
        ms("2024-01-16T05:00:00+00:00"),  # New York's midnight
        ms("2024-01-17T05:00:00+00:00"),
    )
    assert plans["1m"].symbols == ("AAPL", "MSFT")


def test_a_refill_waits_until_the_stream_is_past_its_last_window() -> None:
    (refill,) = refills(OUTAGE, ["5m"], ["AAPL"])
    assert not refill.due(ms("2024-01-16T15:09:59+00:00"))
    assert refill.due(ms("2024-01-16T15:10:00+00:00"))


def test_the_request_is_a_valid_api_backfill_of_exactly_those_windows() -> None:
    (refill,) = refills(OUTAGE, ["1m"], ["AAPL"])
    request = parse_backfill_request(refill.request(), now=datetime(2024, 1, 17, tzinfo=UTC))
    assert request.strategy == ("api",)
    assert (request.start, request.end) == (
        datetime(2024, 1, 16, 15, 2, tzinfo=UTC),
        datetime(2024, 1, 16, 15, 7, tzinfo=UTC),
    )
    assert (
        orjson.loads(refill.request())["request_id"] != orjson.loads(refill.request())["request_id"]
    ), "two refills are two requests"


def test_nothing_to_refill_without_symbols_or_a_span() -> None:
    assert refills(OUTAGE, ["1m"], []) == []
    assert refills(Outage(5, 5), ["1m"], ["AAPL"]) == []
