"""Envelope v1: the seed's exact shape, key order and dedup key."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from chronox_stream.contracts.envelope import (
    decode_bar,
    envelope,
    format_ts,
    parse_ts,
)
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar

BAR = Bar(
    symbol="AAPL",
    tf="1m",
    ts=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
    open=150.0,
    high=151.0,
    low=149.5,
    close=150.5,
    volume=1_000_000,
    vwap=150.2,
    transactions=812,
)


def test_envelope_matches_the_seed_format() -> None:
    doc = orjson.loads(envelope(BAR, "api"))
    assert list(doc) == [
        "event", "symbol", "tf", "ts", "ohlcv", "features", "source", "version", "dedup_key",
    ]  # fmt: skip
    assert doc["event"] == "bar"
    assert doc["ts"] == "2024-01-15T10:30:00Z"
    assert doc["ohlcv"] == {
        "open": 150.0, "high": 151.0, "low": 149.5, "close": 150.5, "volume": 1_000_000,
    }  # fmt: skip
    assert doc["features"] == {"vwap": 150.2, "transactions": 812}
    assert doc["source"] == "api"
    assert doc["version"] == "v1"


def test_envelope_dedup_key_format() -> None:
    doc = orjson.loads(envelope(BAR, "flatpack"))
    assert doc["dedup_key"] == "AAPL|1m|2024-01-15T10:30:00Z"


def test_unknown_features_are_omitted_not_null() -> None:
    bare = Bar(symbol="X", tf="1d", ts=BAR.ts, open=1, high=1, low=1, close=1, volume=0)
    assert orjson.loads(envelope(bare, "snapshot"))["features"] == {}


def test_round_trip_keeps_the_bar() -> None:
    raw = envelope(BAR, "api")
    assert decode_bar(raw) == (BAR, "api")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version="v2"),
        lambda d: d.update(dedup_key="AAPL|1m|2024-01-15T10:31:00Z"),
        lambda d: d.update(ts="2024-01-15 10:30:00Z", dedup_key="AAPL|1m|2024-01-15 10:30:00Z"),
        lambda d: d.update(ts="2024-01-15T10:30:00+00", dedup_key="AAPL|1m|2024-01-15T10:30:00+00"),
        lambda d: d.pop("ohlcv"),
        lambda d: d["ohlcv"].update(close="151.0"),
        lambda d: d["ohlcv"].update(volume=None),
        lambda d: d["ohlcv"].update(high=True),
        lambda d: d["features"].update(vwap="x"),
        lambda d: d.update(features=[1]),
        lambda d: d.update(source="guess"),
        lambda d: d.update(symbol=7, dedup_key="7|1m|2024-01-15T10:30:00Z"),
    ],
)
def test_decode_refuses_what_is_not_a_v1_envelope(mutate: object) -> None:
    """Whatever the database would refuse is refused here, where it can be dead-lettered."""
    doc = orjson.loads(envelope(BAR, "api"))
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(Rejected) as info:
        decode_bar(orjson.dumps(doc))
    assert info.value.reason == "invalid_envelope"


def keyed(symbol: str = "AAPL", tf: str = "1m", ts: str = "2024-01-15T10:30:00Z") -> dict[str, str]:
    """A new symbol, tf or ts with the dedup key to match, so that the value is what fails."""
    return {"symbol": symbol, "tf": tf, "ts": ts, "dedup_key": f"{symbol}|{tf}|{ts}"}


@pytest.mark.parametrize(
    "change",
    [
        keyed(symbol="AA\x00PL"),  # PostgreSQL refuses a NUL byte in text
        keyed(symbol="A" * 3000),
        keyed(symbol="AAPL\n"),
        keyed(symbol="aapl"),
        keyed(tf="7m"),
        keyed(ts="1969-12-31T23:59:00Z"),
        keyed(ts="2100-01-01T00:00:00Z"),
        keyed(ts="２０２４-01-15T10:30:00Z"),
        {"features": {"vwap": 150.2, "transactions": 2**63}},  # beyond bigint
        {"features": {"transactions": 812.0}},
        {"features": {"transactions": -1}},
        {"features": {"vwap": 1e308}},
        {"ohlcv": {"open": 1e308, "high": 1e308, "low": 1.0, "close": 1.0, "volume": 1}},
        {"ohlcv": {"open": 0, "high": 1, "low": 0, "close": 1, "volume": 1}},
        {"ohlcv": {"open": 1, "high": 1, "low": 1, "close": 1, "volume": -1}},
        {"ohlcv": {"open": 1, "high": 1, "low": 1, "close": 1}},
        {"ohlcv": [1, 1, 1, 1, 1]},
        {"source": ["api"]},
    ],
)
def test_values_the_sinks_cannot_store_are_refused(change: dict[str, object]) -> None:
    doc = orjson.loads(envelope(BAR, "api")) | change
    with pytest.raises(Rejected) as info:
        decode_bar(orjson.dumps(doc))
    assert info.value.reason == "invalid_envelope"


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1]", b"null", b'{"event": "bar"}'])
def test_what_is_no_envelope_at_all_is_refused(raw: bytes) -> None:
    with pytest.raises(Rejected):
        decode_bar(raw)


def test_the_bounds_themselves_pass() -> None:
    edge = Bar(symbol="BRK.B", tf="1d", ts=datetime(1970, 1, 1, tzinfo=UTC), open=1e7, high=1e7,
               low=0.0001, close=1, volume=0, vwap=0, transactions=2**63 - 1)  # fmt: skip
    assert decode_bar(envelope(edge, "flatpack")) == (edge, "flatpack")


@pytest.mark.parametrize(
    "text",
    ["2024-01-15T10:30:00", "2024-01-15T10:30:00.000Z", "2024-01-15T10:30:00+00:00",
     "2024-01-15 10:30:00Z", "2024-13-15T10:30:00Z", "20240115T103000Z", ""],
)  # fmt: skip
def test_timestamps_have_exactly_one_form(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ts(text)


def test_remembered_timestamps_stay_exact_and_a_refused_one_is_refused_again() -> None:
    utc = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert format_ts(utc) == "2024-01-15T10:30:00Z"
    tokyo = utc.astimezone(ZoneInfo("Asia/Tokyo"))  # the same moment, remembered or not
    assert format_ts(tokyo) == "2024-01-15T10:30:00Z"
    assert format_ts(utc.replace(second=1)) == "2024-01-15T10:30:01Z"
    for _ in range(2):
        with pytest.raises(ValueError):
            parse_ts("2024-01-15T10:30:00")
    assert parse_ts("2024-01-15T10:30:01Z") == utc.replace(second=1)


def test_timestamps_are_utc_whatever_the_zone() -> None:
    new_york = datetime(2024, 1, 15, 5, 30, tzinfo=ZoneInfo("America/New_York"))
    assert format_ts(new_york) == "2024-01-15T10:30:00Z"
    assert parse_ts("2024-01-15T10:30:00Z") == new_york
