"""Property-based: whatever a WebSocket server sends, ``parse_frame`` returns a frame or raises
``MalformedMessage``, and each trade event in it becomes a tick or a ``ValueError`` (what the
stream agent dead-letters), never another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronox_stream.contracts.ticks import tick_from_polygon
from chronox_stream.sources.polygon_ws import Frame, MalformedMessage, Status, parse_frame

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -1, 2**63, 1e308, 1_705_392_000_000, "T", "status", "AAPL"])
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)
KEYS = ["ev", "sym", "x", "i", "z", "p", "s", "c", "t", "q", "status", "message"]
keys = st.sampled_from(KEYS)


def trade(i: int) -> dict[str, Any]:
    return {
        "ev": "T", "sym": "AAPL", "x": 4, "i": f"{i}", "z": 3, "p": 185.5, "s": 100,
        "c": [14, 41], "t": 1_705_392_000_000 + i, "q": 1000 + i,
    }  # fmt: skip


def valid_message() -> list[dict[str, Any]]:
    status = {"ev": "status", "status": "success", "message": "subscribed to: T.AAPL"}
    return [status, trade(1), trade(2)]


@st.composite
def mutated(draw: st.DrawFn) -> list[Any]:
    """A valid message with some event fields replaced or removed, or events replaced."""
    events: list[Any] = valid_message()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(events) - 1))
        if not isinstance(events[i], dict) or draw(st.integers(0, 9)) == 0:
            events[i] = draw(json_values)
            continue
        key = draw(keys)
        if draw(st.booleans()) and key in events[i]:
            del events[i][key]
        else:
            events[i][key] = draw(json_values)
    return events


def check(data: str | bytes) -> Frame | None:
    """The parser's contract, and the tick parser's on every trade event it passes on."""
    try:
        frame = parse_frame(data)
    except MalformedMessage:
        return None
    assert all(isinstance(e, dict) and e.get("ev") != "status" for e in frame.events)
    assert all(isinstance(s.status, str) and isinstance(s.message, str) for s in frame.statuses)
    for event in frame.events:
        if event.get("ev") == "T":
            try:
                tick_from_polygon(event)
            except ValueError:
                pass
    return frame


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=100))
def test_any_text_even_with_lone_surrogates(text: str) -> None:
    check(text)


@FUZZ
@given(json_values)
def test_any_json(value: Any) -> None:
    check(json.dumps(value))


@FUZZ
@given(st.lists(st.dictionaries(keys | st.text(max_size=6), json_values, max_size=6), max_size=4))
def test_any_list_of_objects_with_polygon_keys(events: list[dict[str, Any]]) -> None:
    frame = check(json.dumps(events).encode())
    if frame is not None:
        assert len(frame.events) + len(frame.statuses) == len(events), "no event vanishes"


@FUZZ
@given(mutated())
def test_mutated_messages(events: list[Any]) -> None:
    frame = check(json.dumps(events))
    if frame is not None:
        assert len(frame.events) + len(frame.statuses) == len(events), "no event vanishes"


def test_a_valid_message_splits_into_statuses_and_data_in_order() -> None:
    frame = parse_frame(json.dumps(valid_message()).encode())
    assert frame.statuses == [Status("success", "subscribed to: T.AAPL")]
    assert [e["i"] for e in frame.events] == ["1", "2"]
    assert [tick_from_polygon(e).trade_id for e in frame.events] == ["1", "2"]


@pytest.mark.parametrize(
    "data",
    [b"", b"{}", b"[1]", '"\ud800"', b"[{}, 2]", b'[{"ev": "status", "status": 1}]', b"\xff"],
)
def test_what_is_not_an_array_of_objects_is_malformed(data: str | bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_frame(data)
