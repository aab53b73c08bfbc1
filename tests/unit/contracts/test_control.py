"""The control-topic contract: what a request may say, and how each defect is refused."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from chronox_stream.contracts.control import parse_backfill_request
from chronox_stream.contracts.rejects import Rejected

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)


def parse(doc: object) -> object:
    return parse_backfill_request(orjson.dumps(doc), now=NOW)


def reason_of(raw: bytes) -> str:
    with pytest.raises(Rejected) as info:
        parse_backfill_request(raw, now=NOW)
    assert info.value.message  # a human message always accompanies the code
    return info.value.reason


def test_defaults_follow_the_seed() -> None:
    request = parse({"request_id": "r1", "symbols": ["AAPL"]})
    assert request.timeframe == "1m"
    assert request.snapshot_method == "snapshot"
    assert request.publish_mode == "kafka-first"
    assert request.enable_stream is True
    assert request.throttle_ms == 0
    assert request.dry_run is False
    assert request.start is None and request.end is None


def test_dates_are_new_york_trading_dates_and_instants_keep_their_zone() -> None:
    request = parse(
        {"request_id": "r1", "symbols": ["AAPL"], "start": "2024-01-02", "end": "2024-01-03"}
    )
    assert request.start == datetime(2024, 1, 2, 5, tzinfo=UTC)  # 00:00 in New York (EST)
    end_of_day = datetime(2024, 1, 4, 5, tzinfo=UTC) - timedelta(microseconds=1)
    assert request.end == end_of_day  # the 3rd's after-hours (to 01:00Z on the 4th) included
    request = parse({"request_id": "r1", "symbols": ["AAPL"], "start": "2024-01-02T10:00:00-05:00"})
    assert request.start == datetime(2024, 1, 2, 15, tzinfo=UTC)
    request = parse({"request_id": "r1", "start": "2024-01-02T00:00Z", "end": "2024-01-03T00:00Z"})
    assert request.start == datetime(2024, 1, 2, tzinfo=UTC)
    assert request.end == datetime(2024, 1, 3, tzinfo=UTC)


def test_a_summer_date_starts_at_four_utc() -> None:
    now = datetime(2024, 8, 1, tzinfo=UTC)
    raw = orjson.dumps({"request_id": "r1", "start": "2024-07-16", "end": "2024-07-16"})
    request = parse_backfill_request(raw, now=now)
    assert request.start == datetime(2024, 7, 16, 4, tzinfo=UTC)  # EDT
    assert request.end == datetime(2024, 7, 17, 4, tzinfo=UTC) - timedelta(microseconds=1)


def test_a_date_that_has_not_begun_in_new_york_is_in_the_future() -> None:
    """At 02:00Z on the 20th it is still the 19th in New York: the 20th has not started."""
    now = datetime(2024, 1, 20, 2, tzinfo=UTC)
    with pytest.raises(Rejected) as info:
        parse_backfill_request(orjson.dumps({"request_id": "r", "start": "2024-01-20"}), now=now)
    assert info.value.reason == "invalid_range"
    raw = orjson.dumps({"request_id": "r", "start": "2024-01-19", "end": "2024-01-20"})
    assert parse_backfill_request(raw, now=now).end == datetime(
        2024, 1, 21, 5, tzinfo=UTC
    ) - timedelta(microseconds=1)


def test_duplicate_symbols_are_collapsed_in_order() -> None:
    assert parse({"request_id": "r", "symbols": ["MSFT", "AAPL", "MSFT"]}).symbols == (
        "MSFT",
        "AAPL",
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "colour": "red"}', "unknown_field"),
        (b'{"symbols": ["AAPL"]}', "missing_field"),
        (b'{"request_id": "r", "symbols": "AAPL"}', "invalid_type"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "dry_run": "yes"}', "invalid_type"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "throttle_ms": true}', "invalid_type"),
        (b'{"request_id": "r", "symbols": ["aapl"]}', "invalid_symbol"),
        (b'{"request_id": "r", "symbols": ["AAPL; DROP"]}', "invalid_symbol"),
        (b'{"request_id": "r", "symbols": ["ABCDEFGHIJKLMN"]}', "invalid_symbol"),
        (b'{"request_id": "r", "symbols": [42]}', "invalid_symbol"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "strategy": "api+api"}', "invalid_strategy"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "strategy": "ftp"}', "invalid_strategy"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "timeframe": "7m"}', "invalid_timeframe"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "publish_mode": "db-last"}', "invalid_value"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "throttle_ms": -1}', "invalid_value"),
        (b'{"request_id": "r", "symbols": ["AAPL"], "start": "2024-02-01"}', "invalid_range"),
        (
            b'{"request_id": "r", "symbols": ["AAPL"], "start": "2024-01-05", "end": "2024-01-02"}',
            "invalid_range",
        ),
        (b'{"request_id": "r", "symbols": ["AAPL"], "start": "yesterday"}', "invalid_range"),
        (
            b'{"request_id": "r", "symbols": ["AAPL"], "start": "2024-01-05T10:00:00"}',
            "invalid_range",
        ),
        (b'{"request_id": "has space", "symbols": ["AAPL"]}', "invalid_value"),
        (b'{"request_id": null, "symbols": ["AAPL"]}', "invalid_type"),
        (b'{"request_id": ["r"], "symbols": ["AAPL"]}', "invalid_type"),
        (b'{"request_id": "r\\n", "symbols": ["AAPL"]}', "invalid_value"),
        (b'{"request_id": "r", "symbols": ["AAPL\\n"]}', "invalid_symbol"),
        (b'{"request_id": "r", "symbols": ["AA\\u0000PL"]}', "invalid_symbol"),
        (b'{"request_id": "r", "start": "0001-01-01T00:00:00+01:00"}', "invalid_range"),
        (b'{"request_id": "r", "end": "9999-12-31T23:59:59-01:00"}', "invalid_range"),
        (b'{"request_id": "r", "start": "1969-12-31"}', "invalid_range"),
        (b'{"request_id": "r", "start": 20240102}', "invalid_type"),
    ],
)
def test_defects_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    assert reason_of(raw) == reason


def test_the_calendars_last_day_is_a_valid_end() -> None:
    request = parse({"request_id": "r", "start": "1970-01-01", "end": "9999-12-31T23:59:59Z"})
    assert request.start == datetime(1970, 1, 1, 5, tzinfo=UTC)
    assert request.end is not None and request.end.year == 9999
    request = parse({"request_id": "r", "start": "1970-01-01", "end": "9999-12-31"})
    assert request.end == datetime.max.replace(tzinfo=UTC)


def test_share_class_tickers_are_valid() -> None:
    assert parse({"request_id": "r", "symbols": ["BRK.B", "BF-B"]}).symbols == ("BRK.B", "BF-B")


def test_no_symbols_makes_a_registry_driven_request() -> None:
    assert parse({"request_id": "r"}).symbols == ()
    assert parse({"request_id": "r", "symbols": []}).symbols == ()


def test_strategy_is_an_override_only_when_given() -> None:
    assert parse({"request_id": "r"}).strategy is None
    assert parse({"request_id": "r", "strategy": "api+flatpack"}).strategy == ("flatpack", "api")
