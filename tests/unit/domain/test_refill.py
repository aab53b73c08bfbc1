"""What a WebSocket outage costs: the windows refetched from REST, and not before they close."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from chronox_stream.contracts.control import parse_backfill_request
from chronox_stream.contracts.work import WorkItem, plan_work
from chronox_stream.domain.refill import Outage, Refill, refills


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


OUTAGE = Outage(ms("2024-01-16T15:02:40+00:00"), ms("2024-01-16T15:06:05+00:00"))


def spans(plans: list[Refill]) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for refill in plans:
        out.setdefault(refill.timeframe, []).append((refill.start_ms, refill.end_ms))
    return out


def test_every_window_the_outage_touched_is_refetched_per_timeframe() -> None:
    plans = refills(OUTAGE, ["1m", "5m", "1d"], ["MSFT", "AAPL"])
    assert spans(plans) == {
        "1m": [  # the minutes closed before the first trade after, then that trade's minute
            (ms("2024-01-16T15:02:00+00:00"), ms("2024-01-16T15:06:00+00:00")),
            (ms("2024-01-16T15:06:00+00:00"), ms("2024-01-16T15:07:00+00:00")),
        ],
        "5m": [
            (ms("2024-01-16T15:00:00+00:00"), ms("2024-01-16T15:05:00+00:00")),
            (ms("2024-01-16T15:05:00+00:00"), ms("2024-01-16T15:10:00+00:00")),
        ],
        "1d": [  # New York's midnight to midnight: one window, still open
            (ms("2024-01-16T05:00:00+00:00"), ms("2024-01-17T05:00:00+00:00")),
        ],
    }
    assert {refill.symbols for refill in plans} == {("AAPL", "MSFT")}


def test_only_the_window_of_the_latest_trade_waits_until_the_stream_is_past_it() -> None:
    closed, current = refills(OUTAGE, ["5m"], ["AAPL"])
    assert closed.due(OUTAGE.first_after_ms), "windows closed before the reconnect: at once"
    assert not current.due(ms("2024-01-16T15:09:59+00:00"))
    assert current.due(ms("2024-01-16T15:10:00+00:00"))


def test_the_request_is_a_valid_api_backfill_of_exactly_those_windows() -> None:
    closed, _ = refills(OUTAGE, ["1m"], ["AAPL"])
    request = parse_backfill_request(closed.request(), now=datetime(2024, 1, 17, tzinfo=UTC))
    assert request.strategy == ("api",)
    assert (request.start, request.end) == (
        datetime(2024, 1, 16, 15, 2, tzinfo=UTC),
        datetime(2024, 1, 16, 15, 6, tzinfo=UTC),
    )
    assert (
        orjson.loads(closed.request())["request_id"] != orjson.loads(closed.request())["request_id"]
    ), "two refills are two requests"


def test_late_reports_sent_during_the_outage_are_refetched_up_to_the_late_limit() -> None:
    plans = refills(OUTAGE, ["1m", "5m"], ["AAPL"], late_limit_ms=15 * 60_000)
    assert spans(plans) == {
        "1m": [
            (ms("2024-01-16T14:47:00+00:00"), ms("2024-01-16T15:06:00+00:00")),
            (ms("2024-01-16T15:06:00+00:00"), ms("2024-01-16T15:07:00+00:00")),
        ],
        "5m": [
            (ms("2024-01-16T14:45:00+00:00"), ms("2024-01-16T15:05:00+00:00")),
            (ms("2024-01-16T15:05:00+00:00"), ms("2024-01-16T15:10:00+00:00")),
        ],
    }


def test_a_refill_fetches_its_windows_again_even_if_an_earlier_run_covered_them() -> None:
    closed, _ = refills(OUTAGE, ["1m"], ["AAPL"])
    request = parse_backfill_request(closed.request(), now=datetime(2024, 1, 17, tzinfo=UTC))
    assert request.refetch is True
    (item,) = plan_work(request, now=datetime(2024, 1, 17, tzinfo=UTC), registered={})
    assert item.refetch is True and WorkItem.from_json(item.to_json()) == item
    plain = parse_backfill_request(b'{"request_id": "r", "symbols": ["AAPL"]}',
                                   now=datetime(2024, 1, 17, tzinfo=UTC))  # fmt: skip
    assert plain.refetch is False
    older = orjson.loads(item.to_json())
    del older["refetch"]  # a work item written before the field existed
    assert WorkItem.from_json(orjson.dumps(older)).refetch is False


def test_nothing_to_refill_without_symbols_or_a_span() -> None:
    assert refills(OUTAGE, ["1m"], []) == []
    assert refills(Outage(6, 5), ["1m"], ["AAPL"]) == []


def test_a_subscription_has_the_window_it_joined_refilled() -> None:
    joined = ms("2024-01-16T15:03:20+00:00")
    (current,) = refills(Outage(joined, joined), ["1m"], ["AAPL"])
    assert (current.start_ms, current.end_ms) == (joined - 20_000, joined + 40_000)
