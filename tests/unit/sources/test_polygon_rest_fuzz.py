"""Property-based: whatever a REST server sends, the page parsers return well-formed bars or
raise ``MalformedPage``, a ``next_url`` is followed only on the base URL's origin, and
``Retry-After`` never asks for more than its cap."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from chronox_stream.sources.polygon_pages import (
    MAX_MS,
    AggregatesPage,
    MalformedPage,
    Snapshot,
    parse_aggregates_page,
    parse_snapshot,
)
from chronox_stream.sources.polygon_rest import PolygonError, follow_next_url, retry_after_s
from chronox_stream.sources.urls import origin

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -1, 1.5, 2**63, 2**63 - 1, 1e308, -1e-308, MAX_MS, MAX_MS - 1])
    | st.text(max_size=20)
    | st.sampled_from(["", "1", "nan", "inf", "1e999", "http://x/", "/v2/next"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=10,
)
FIELDS = ["o", "h", "l", "c", "v", "vw", "n", "t"]
keys = st.sampled_from([*FIELDS, "results", "next_url", "ticker", "min", "day", "updated"])
documents = st.dictionaries(keys | st.text(max_size=8), json_values, max_size=6)


def encode(value: Any) -> bytes:
    """JSON as a foreign server might write it: big integers included."""
    return json.dumps(value).encode()


def valid_row(t: int) -> dict[str, Any]:
    return {"o": 10.5, "h": 11, "l": 10.0, "c": 10.75, "v": 1200, "vw": 10.6, "n": 12, "t": t}


def valid_page() -> dict[str, Any]:
    rows = [valid_row(1_705_392_000_000 + 60_000 * i) for i in range(3)]
    return {"results": rows, "next_url": "https://api.polygon.io/v2/aggs/next?cursor=abc"}


def valid_snapshot() -> dict[str, Any]:
    return {
        "ticker": {
            "min": valid_row(1_705_420_740_000),
            "day": {k: v for k, v in valid_row(0).items() if k != "t"},
            "updated": 1_705_420_799_000_000_000,
        }
    }


@st.composite
def mutated(draw: st.DrawFn, make: Any) -> dict[str, Any]:
    """A valid document with some fields (top-level or nested) replaced or removed."""
    doc = make()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        parents = list(_objects(doc))
        parent = draw(st.sampled_from(parents))
        key = draw(keys if not parent else st.sampled_from(sorted(parent)) | keys)
        if draw(st.booleans()) and key in parent:
            del parent[key]
        else:
            parent[key] = draw(json_values)
    return doc


def _objects(doc: Any) -> Any:
    if isinstance(doc, dict):
        yield doc
        for value in doc.values():
            yield from _objects(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _objects(value)


def check_page(raw: bytes) -> AggregatesPage | None:
    try:
        page = parse_aggregates_page("AAPL", "1m", raw)
    except MalformedPage:
        return None
    assert page.next_url is None or (isinstance(page.next_url, str) and page.next_url)
    for bar in page.bars:
        well_formed(bar)
    return page


def check_snapshot(raw: bytes) -> Snapshot | None:
    try:
        snapshot = parse_snapshot("AAPL", raw)
    except MalformedPage:
        return None
    for bar in (snapshot.minute, snapshot.day):
        if bar is not None:
            well_formed(bar)
    return snapshot


def well_formed(bar: Any) -> None:
    """What the rest of the pipeline relies on: finite numbers, int64 counts, a real time."""
    numbers = [bar.open, bar.high, bar.low, bar.close, bar.volume]
    assert all(type(x) is float and math.isfinite(x) for x in numbers)
    assert bar.vwap is None or (type(bar.vwap) is float and math.isfinite(bar.vwap))
    assert bar.volume >= 0
    assert bar.transactions is None or (
        type(bar.transactions) is int and 0 <= bar.transactions < 2**63
    )
    assert bar.ts.tzinfo is UTC and 1970 <= bar.ts.year < 9999


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes(raw: bytes) -> None:
    check_page(raw)
    check_snapshot(raw)


@FUZZ
@given(json_values)
def test_any_json(value: Any) -> None:
    check_page(encode(value))
    check_snapshot(encode(value))


@FUZZ
@given(documents)
def test_any_object_with_polygon_keys(doc: dict[str, Any]) -> None:
    check_page(encode(doc))
    check_snapshot(encode(doc))


@FUZZ
@given(mutated(valid_page))
def test_mutated_pages(doc: dict[str, Any]) -> None:
    page = check_page(encode(doc))
    rows = doc.get("results")
    if page is not None and isinstance(rows, list):
        assert len(page.bars) == len(rows), "a bar is never dropped silently"


@FUZZ
@given(mutated(valid_snapshot))
def test_mutated_snapshots(doc: dict[str, Any]) -> None:
    check_snapshot(encode(doc))


def test_the_valid_documents_parse() -> None:
    page = parse_aggregates_page("AAPL", "1m", encode(valid_page()))
    assert [bar.ts.minute for bar in page.bars] == [0, 1, 2]
    assert page.next_url == valid_page()["next_url"]
    snapshot = parse_snapshot("AAPL", encode(valid_snapshot()))
    assert snapshot.minute is not None and snapshot.day is not None


NOW = datetime(2024, 1, 16, 12, 0, tzinfo=UTC)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=40),
        st.floats().map(repr),
        st.integers().map(str),
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        st.sampled_from(["inf", "-inf", "nan", "Infinity", "1e999", "-5", "0", "1_0", " 3 "]),
    ),
    st.floats(min_value=0, max_value=3600),
)
def test_retry_after_never_waits_more_than_its_cap(value: str, cap: float) -> None:
    wait = retry_after_s({"Retry-After": value}, cap_s=cap, now=NOW)
    assert wait is None or 0 <= wait <= cap


def test_retry_after_reads_seconds_and_dates_and_caps_them() -> None:
    def wait(value: str) -> float | None:
        return retry_after_s({"Retry-After": value}, cap_s=60, now=NOW)

    assert wait("7") == 7
    assert wait("inf") == 60 and wait("1e999") == 60 and wait("86400") == 60
    assert wait("Tue, 16 Jan 2024 12:00:30 GMT") == 30
    assert wait("Tue, 16 Jan 2024 11:00:00 GMT") == 0
    assert wait("Fri, 31 Dec 9999 23:59:59 GMT") == 60
    assert wait("-1") is None and wait("nan") is None and wait("soon") is None
    assert retry_after_s({}, cap_s=60, now=NOW) is None


HOME = URL("https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/minute/1/2?limit=5")
links = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="htps:/@[]%.\\#?=&:0123456789abcdefgilopy-", max_size=60),
    st.sampled_from(
        ["https://", "http://", "//", "https://u:p@", "https://API.polygon.io:443"]
    ).flatmap(lambda prefix: st.text(max_size=30).map(lambda tail: prefix + tail)),
)


@FUZZ
@given(links)
def test_a_next_url_is_followed_only_on_the_home_origin(link: str) -> None:
    try:
        target = follow_next_url(HOME, link, origin(HOME))
    except PolygonError:
        return
    assert origin(target) == origin(HOME)
    assert (target.scheme, target.raw_host, target.port) == ("https", "api.polygon.io", 443)
    assert target.raw_user is None and target.raw_password is None
