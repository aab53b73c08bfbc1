"""The raw ticks contract: what a producer may write, and Polygon's ``T`` mapped onto it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.contracts.ticks import Tick, parse_tick, tick_from_polygon
from chronox_stream.domain.bounds import INT64_MAX, MAX_PRICE

GOOD: dict[str, Any] = {"symbol": "AAPL", "ts": 1705329000123, "price": 150.25, "size": 100,
                        "conditions": [14, 37], "exchange": 4, "id": "52983525029461",
                        "sequence": 1063}  # fmt: skip


def test_a_documented_tick_parses_and_round_trips() -> None:
    tick = parse_tick(orjson.dumps(GOOD))
    assert tick == Tick(symbol="AAPL", ts=1705329000123, price=150.25, size=100,
                        conditions=(14, 37), exchange=4, trade_id="52983525029461",
                        sequence=1063)  # fmt: skip
    assert parse_tick(tick.to_json()) == tick


def test_only_the_required_fields_are_required() -> None:
    tick = parse_tick(b'{"symbol": "BRK.B", "ts": 1705329000123, "price": 3, "size": 0}')
    assert (tick.conditions, tick.exchange, tick.trade_id, tick.sequence) == ((), None, None, None)
    assert tick.price == 3.0 and isinstance(tick.price, float)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"colour": "red"}, "unknown field"),
        ({"symbol": "aapl"}, "invalid symbol"),
        ({"symbol": "TOOLONGSYMBOLX"}, "invalid symbol"),
        ({"ts": 1705329000}, "epoch milliseconds"),
        ({"ts": 1705329000123000000}, "epoch milliseconds"),
        ({"ts": 1.5e12}, "whole number"),
        ({"price": 0}, "price"),
        ({"price": "150.25"}, "price"),
        ({"price": True}, "price"),
        ({"size": -1}, "size"),
        ({"size": 1.5}, "size"),
        ({"conditions": 14}, "conditions"),
        ({"conditions": ["14"]}, "condition"),
        ({"id": 5}, "id"),
        ({"sequence": "1"}, "sequence"),
    ],
)
def test_what_is_not_a_tick_is_refused_with_the_reason(
    change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(Rejected, match=complaint):
        parse_tick(orjson.dumps(GOOD | change))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": 1e308}, "out_of_range"),  # an infinite notional crashed the aggregator
        ({"price": MAX_PRICE * 1.01}, "out_of_range"),
        ({"price": 2**64 - 1}, "out_of_range"),
        ({"price": -1.5}, "invalid_value"),
        ({"size": 2**63}, "out_of_range"),  # crashed the state flush
        ({"size": 10**12}, "out_of_range"),  # $150 trillion in one trade
        ({"sequence": 2**63}, "out_of_range"),
        ({"sequence": -1}, "out_of_range"),
        ({"exchange": 2**64 - 1}, "out_of_range"),
        ({"conditions": [14, 100_000]}, "out_of_range"),
        ({"conditions": [14] * 33}, "out_of_range"),
        ({"id": "9" * 65}, "out_of_range"),
        ({"ts": 1705329000}, "out_of_range"),
        ({"symbol": "AAPL\n"}, "invalid_symbol"),
        ({"symbol": "AA\u0000PL"}, "invalid_symbol"),
        ({"symbol": None}, "missing_field"),
        ({"size": True}, "invalid_type"),
        ({"conditions": 0}, "invalid_type"),
        ({"conditions": [14, None]}, "invalid_type"),
        ({"colour": "red"}, "unknown_field"),
    ],
)
def test_values_out_of_bounds_are_refused_with_a_reason_code(
    change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Rejected) as info:
        parse_tick(orjson.dumps(GOOD | change))
    assert info.value.reason == reason


def test_the_bounds_themselves_are_accepted() -> None:
    edges = {"price": MAX_PRICE, "size": 100_000, "sequence": INT64_MAX, "exchange": INT64_MAX,
             "conditions": [0, 1000] * 16, "id": "9" * 64}  # fmt: skip
    tick = parse_tick(orjson.dumps(GOOD | edges))
    assert (tick.price, tick.sequence, len(tick.conditions)) == (MAX_PRICE, INT64_MAX, 32)
    assert parse_tick(orjson.dumps(GOOD | {"price": 1e-7, "size": INT64_MAX})).size == INT64_MAX
    for missing in ("symbol", "ts", "price", "size"):
        doc = {k: v for k, v in GOOD.items() if k != missing}
        with pytest.raises(Rejected, match=missing) as info:
            parse_tick(orjson.dumps(doc))
        assert info.value.reason == "missing_field"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"AAPL"'])
def test_what_is_not_an_object_is_refused(raw: bytes) -> None:
    with pytest.raises(Rejected):
        parse_tick(raw)


def test_polygons_trade_event_maps_onto_the_contract() -> None:
    event = {"ev": "T", "sym": "MSFT", "x": 11, "i": "71675577320245", "z": 3, "p": 390.12,
             "s": 37, "c": [12, 37], "t": 1705329000456, "q": 9052}  # fmt: skip
    assert tick_from_polygon(event) == Tick(symbol="MSFT", ts=1705329000456, price=390.12,
                                            size=37, conditions=(12, 37), exchange=11,
                                            trade_id="71675577320245", sequence=9052)  # fmt: skip
    assert tick_from_polygon(event | {"c": None}).conditions == ()
    with pytest.raises(ValueError, match="not a trade"):
        tick_from_polygon(event | {"ev": "Q"})
