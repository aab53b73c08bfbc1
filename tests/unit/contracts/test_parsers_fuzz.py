"""Every parser of outside input, fed anything: it returns a valid object or raises its
documented, typed refusal, never another exception.

Inputs per parser: arbitrary bytes, arbitrary JSON documents (any value, and objects of
the parser's field names with any values), and valid messages with fields replaced,
removed or set to edge values. JSON is written here, not by orjson, so that it can carry
what other producers write: integers beyond 64 bits, numbers such as ``1e999``, and
``NaN``/``Infinity`` literals.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronox_stream.contracts.control import (
    EARLIEST,
    MAX_SYMBOLS,
    MAX_THROTTLE_MS,
    REQUEST_ID_RE,
    BackfillRequest,
    is_symbol,
    parse_backfill_request,
)
from chronox_stream.contracts.envelope import decode_bar, envelope
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.contracts.ticks import TS_RANGE_MS, FeedMarker, Tick, parse_raw, parse_tick
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.bounds import INT64_MAX, MAX_PRICE
from chronox_stream.domain.registry import parse_command
from chronox_stream.domain.sources import PHASE_FIELD, SOURCE_RANK
from chronox_stream.domain.splits import parse_splits_page
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.sources.flatfile_csv import COLUMNS, FlatFileError, parse_aggregates
from chronox_stream.sources.polygon_pages import MalformedPage

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Raw:
    """A JSON number written as is, e.g. ``1e999`` or a 30-digit integer."""

    text: str


def encode(value: Any) -> bytes:
    """JSON text of ``value``; ``Raw`` numbers verbatim, non-finite floats as NaN/Infinity."""
    return _text(value).encode()


def _text(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return json.dumps(value)


raw_numbers = st.from_regex(
    r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?", fullmatch=True
).map(Raw)
edge_numbers = st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, INT64_MAX, INT64_MAX + 1, 2**64 - 1, 2**64, -(2**63) - 1,
     10**30, 0.0, -0.0, 1e-300, MAX_PRICE, MAX_PRICE * 1.0001, 1e308, Raw("1e999"),
     Raw("-1e999"), Raw("1E+400"), float("nan"), float("inf"), True, False]
)  # fmt: skip
edge_strings = st.sampled_from(
    ["", "AAPL", "AAPL\n", "AAPL\x00", "A" * 3000, "aapl", "BRK.B", "\u00c4PPL", "１m",
     "2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z\n", "0001-01-01T00:00:00+01:00",
     "9999-12-31T23:59:59-01:00", "9999-12-31", "0001-01-01", "1969-12-31", "2024-02-30",
     "2024-01-15T10:30:00", "1m", "1d", "api", "stream", "api+api"]
)  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | raw_numbers
    | edge_numbers
    | st.text(max_size=30)
    | edge_strings
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=5),
    max_leaves=20,
)  # fmt: skip


def documents(fields: list[str]) -> st.SearchStrategy[bytes]:
    """Bytes, any JSON value, and objects of (mostly) ``fields`` with any values."""
    names = st.sampled_from(fields) | st.text(max_size=6)
    return (
        st.binary(max_size=200)
        | json_values.map(encode)
        | st.dictionaries(names, json_values, max_size=len(fields) + 1).map(encode)
    )


Path = tuple[str | int, ...]


def mutations(valid: dict[str, Any], paths: list[Path]) -> st.SearchStrategy[bytes]:
    """``valid`` with some of ``paths`` set to any or edge values, and some removed."""
    values = json_values | edge_numbers | edge_strings
    return st.builds(
        _mutate,
        st.just(valid),
        st.dictionaries(st.sampled_from(paths), values, min_size=1, max_size=3),
        st.sets(st.sampled_from(paths), max_size=2),
    ).map(encode)


def _mutate(valid: dict[str, Any], changes: dict[Path, Any], removed: set[Path]) -> Any:
    doc: Any = json.loads(json.dumps(valid))
    for path, value in changes.items():
        parent = _parent(doc, path)
        if parent is not None:
            parent[path[-1]] = value
    for path in removed:
        parent = _parent(doc, path)
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return doc


def _parent(doc: Any, path: Path) -> Any:
    for step in path[:-1]:
        if isinstance(doc, dict) and step in doc:
            doc = doc[step]
        elif isinstance(doc, list) and isinstance(step, int) and step < len(doc):
            doc = doc[step]
        else:
            return None
    last = path[-1]
    in_list = isinstance(doc, list) and isinstance(last, int) and last < len(doc)
    return doc if isinstance(doc, dict) or in_list else None


# -- control request ---------------------------------------------------------------

NOW = datetime(2024, 1, 20, 12, tzinfo=UTC)
REQUEST = {"request_id": "bf-1", "symbols": ["AAPL", "BRK.B"], "strategy": "api+snapshot",
           "timeframe": "5m", "snapshot_method": "agg", "publish_mode": "db-first",
           "enable_stream": False, "throttle_ms": 10, "dry_run": True, "start": "2024-01-02",
           "end": "2024-01-03T10:00:00-05:00"}  # fmt: skip
REQUEST_PATHS: list[Path] = [(k,) for k in REQUEST] + [("symbols", 0), ("symbols", 1)]
zones = st.timedeltas(min_value=-timedelta(hours=23, minutes=59),
                      max_value=timedelta(hours=23, minutes=59)).map(timezone)  # fmt: skip
instants = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    zones,
)


def check_request(raw: bytes) -> None:
    try:
        request = parse_backfill_request(raw, now=NOW)
    except Rejected as rejected:
        assert rejected.message
        return
    assert isinstance(request, BackfillRequest)
    assert REQUEST_ID_RE.fullmatch(request.request_id)
    assert len(request.symbols) <= MAX_SYMBOLS and all(is_symbol(s) for s in request.symbols)
    assert request.timeframe in TIMEFRAMES
    assert 0 <= request.throttle_ms <= MAX_THROTTLE_MS
    assert isinstance(request.enable_stream, bool) and isinstance(request.dry_run, bool)
    for moment in (request.start, request.end):
        assert moment is None or (moment.tzinfo is not None and moment >= EARLIEST)
    assert request.start is None or request.start <= NOW
    if request.start is not None and request.end is not None:
        assert request.start <= request.end


@FUZZ
@given(documents(sorted(REQUEST)))
def test_control_request_of_any_document(raw: bytes) -> None:
    check_request(raw)


@FUZZ
@given(mutations(REQUEST, REQUEST_PATHS))
def test_control_request_mutated(raw: bytes) -> None:
    check_request(raw)


@FUZZ
@given(instants, instants)
def test_control_request_of_any_dates(start: str, end: str) -> None:
    check_request(encode({"request_id": "r", "start": start, "end": end}))


# -- registry command --------------------------------------------------------------

COMMAND = {"op": "phase_failed", "symbol": "AAPL", "strategy": "flatpack+api", "enabled": True,
           "phase": "api", "at": "2024-01-17T21:00:00+00:00", "error": "HTTP 500"}  # fmt: skip


def check_command(raw: bytes) -> None:
    try:
        command = parse_command(raw)
    except Rejected as rejected:
        assert rejected.message
        return
    assert is_symbol(command.symbol)
    assert command.enabled is None or isinstance(command.enabled, bool)
    assert command.phase is None or command.phase in PHASE_FIELD
    assert command.at is None or command.at.tzinfo is not None
    assert command.error is None or isinstance(command.error, str)
    assert parse_command(command.to_json()) == command


@FUZZ
@given(documents(sorted(COMMAND)))
def test_registry_command_of_any_document(raw: bytes) -> None:
    check_command(raw)


@FUZZ
@given(mutations(COMMAND, [(k,) for k in COMMAND]) | instants.map(
    lambda at: encode(COMMAND | {"at": at})))  # fmt: skip
def test_registry_command_mutated(raw: bytes) -> None:
    check_command(raw)


# -- raw tick ----------------------------------------------------------------------

TICK = {"symbol": "AAPL", "ts": 1705329000123, "price": 150.25, "size": 100,
        "conditions": [14, 37], "exchange": 4, "id": "529835", "sequence": 1063}  # fmt: skip
TICK_PATHS: list[Path] = [(k,) for k in TICK] + [("conditions", 0), ("conditions", 1)]


def check_tick(raw: bytes) -> None:
    try:
        tick = parse_tick(raw)
    except Rejected as rejected:
        assert rejected.message
        return
    assert isinstance(tick, Tick) and is_symbol(tick.symbol)
    assert TS_RANGE_MS[0] <= tick.ts < TS_RANGE_MS[1]
    assert isinstance(tick.price, float) and 0 < tick.price <= MAX_PRICE
    assert 0 <= tick.size <= INT64_MAX
    for value in (*tick.conditions, tick.exchange, tick.sequence):
        assert value is None or (type(value) is int and 0 <= value <= INT64_MAX)
    assert parse_tick(tick.to_json()) == tick


@FUZZ
@given(documents(sorted(TICK)))
def test_raw_tick_of_any_document(raw: bytes) -> None:
    check_tick(raw)


@FUZZ
@given(mutations(TICK, TICK_PATHS))
def test_raw_tick_mutated(raw: bytes) -> None:
    check_tick(raw)


MARKER = {"symbol": "AAPL", "complete_from": 1705417400001}


def check_raw(raw: bytes) -> None:
    """A raw-ticks record is a valid tick, a valid feed marker or a typed rejection."""
    try:
        found = parse_raw(raw)
    except Rejected as rejected:
        assert rejected.message
        return
    if isinstance(found, Tick):
        assert parse_tick(raw) == found
        return
    assert isinstance(found, FeedMarker) and is_symbol(found.symbol)
    assert type(found.complete_from) is int
    assert TS_RANGE_MS[0] <= found.complete_from < TS_RANGE_MS[1]
    assert parse_raw(found.to_json()) == found
    try:
        parse_tick(raw)
    except Rejected:
        return
    raise AssertionError("a feed marker passed as a tick")


@FUZZ
@given(documents(sorted({*MARKER, *TICK})))
def test_raw_record_of_any_document(raw: bytes) -> None:
    check_raw(raw)


@FUZZ
@given(mutations(MARKER, [(k,) for k in MARKER]))
def test_feed_marker_mutated(raw: bytes) -> None:
    check_raw(raw)


# -- splits page ---------------------------------------------------------------------

SPLIT = {"id": "E1", "ticker": "NVDA", "execution_date": "2024-06-10", "split_from": 1,
         "split_to": 10}  # fmt: skip
SPLITS_PAGE = {"status": "OK", "results": [SPLIT], "next_url": "https://api.example/v3/x"}


def check_splits_page(raw: bytes) -> None:
    try:
        page = parse_splits_page("NVDA", raw)
    except MalformedPage:
        return
    for record in page.records:
        assert record.symbol == "NVDA"
        for part in (record.split_from, record.split_to):
            assert math.isfinite(part) and part > 0
    assert all(isinstance(reason, str) and reason for reason in page.skipped)


@FUZZ
@given(documents(sorted(SPLITS_PAGE)))
def test_splits_page_of_any_document(raw: bytes) -> None:
    check_splits_page(raw)


@FUZZ
@given(mutations(SPLITS_PAGE, [("status",), ("results",), ("next_url",),
                               *[("results", 0, k) for k in SPLIT]]))  # fmt: skip
def test_splits_page_mutated(raw: bytes) -> None:
    check_splits_page(raw)


# -- envelope ----------------------------------------------------------------------

BAR = Bar(symbol="BRK.B", tf="1m", ts=datetime(2024, 1, 15, 10, 30, tzinfo=UTC), open=150.0,
          high=151.0, low=149.5, close=150.5, volume=1e6, vwap=150.2, transactions=812)  # fmt: skip
ENVELOPE = json.loads(envelope(BAR, "api"))
ENVELOPE_PATHS: list[Path] = [(k,) for k in ENVELOPE] + [
    ("ohlcv", k) for k in ENVELOPE["ohlcv"]
] + [("features", "vwap"), ("features", "transactions")]


def check_envelope(raw: bytes) -> None:
    try:
        bar, source = decode_bar(raw)
    except Rejected as rejected:
        assert rejected.reason == "invalid_envelope" and rejected.message
        return
    assert source in SOURCE_RANK and is_symbol(bar.symbol) and bar.tf in TIMEFRAMES
    assert datetime(1970, 1, 1, tzinfo=UTC) <= bar.ts < datetime(2100, 1, 1, tzinfo=UTC)
    for price in (bar.open, bar.high, bar.low, bar.close):
        assert type(price) in (int, float) and 0 < price <= MAX_PRICE
    assert math.isfinite(bar.volume) and bar.volume >= 0
    assert bar.vwap is None or 0 <= bar.vwap <= MAX_PRICE
    assert bar.transactions is None or (type(bar.transactions) is int
                                        and 0 <= bar.transactions <= INT64_MAX)  # fmt: skip
    assert decode_bar(envelope(bar, source)) == (bar, source)


@FUZZ
@given(documents(sorted(ENVELOPE)))
def test_envelope_of_any_document(raw: bytes) -> None:
    check_envelope(raw)


@FUZZ
@given(mutations(ENVELOPE, ENVELOPE_PATHS))
def test_envelope_mutated(raw: bytes) -> None:
    check_envelope(raw)


@FUZZ
@given(json_values | edge_strings, json_values | edge_strings, json_values | edge_strings)
def test_envelope_of_any_key_with_its_dedup_key(symbol: Any, tf: Any, ts: Any) -> None:
    """The dedup key made to match, so that what follows it is checked too."""
    keyed = ENVELOPE | {"symbol": symbol, "tf": tf, "ts": ts, "dedup_key": f"{symbol}|{tf}|{ts}"}
    check_envelope(encode(keyed))


# -- flat-file rows ----------------------------------------------------------------

DAY = date(2024, 1, 16)
MIDNIGHT_NS = int(datetime(2024, 1, 16, tzinfo=UTC).timestamp()) * 10**9
ROW = ["AAPL", "100", "185.0", "185.2", "185.3", "184.9", str(MIDNIGHT_NS + 14 * 3600 * 10**9), "7"]
cells = (
    st.sampled_from(["", "0", "-1", "-0", "1.5", "inf", "-inf", "nan", "1e999", "1e-999", "abc",
                     "99999999999999999999", "9223372036854775807", "9223372036854775808",
                     str(MIDNIGHT_NS), str(MIDNIGHT_NS * 10), "10000001", "AAPL", "aapl"])
    | st.text(alphabet="0123456789.eE+-x ", max_size=12)
)  # fmt: skip


def check_flat_file(data: bytes, rows: int | None = None) -> None:
    try:
        parsed = parse_aggregates(data, day=DAY, symbols=None)
    except FlatFileError as error:
        assert str(error)
        return
    assert parsed.skipped >= 0
    if rows is not None:
        assert parsed.table.num_rows + parsed.skipped == rows
    low = datetime(2024, 1, 15, tzinfo=UTC)
    for bar in parsed.bars():
        assert low <= bar.ts < low + timedelta(days=3)
        for price in (bar.open, bar.high, bar.low, bar.close):
            assert 0 < price <= MAX_PRICE
        assert math.isfinite(bar.volume) and bar.volume >= 0
        assert bar.transactions is None or 0 <= bar.transactions <= INT64_MAX


def csv_file(rows: list[list[str]], zipped: bool) -> bytes:
    text = ",".join(COLUMNS) + "\n" + "".join(",".join(row) + "\n" for row in rows)
    return gzip.compress(text.encode()) if zipped else text.encode()


@FUZZ
@given(st.binary(max_size=300) | st.binary(max_size=300).map(gzip.compress))
def test_flat_file_of_any_bytes(data: bytes) -> None:
    check_flat_file(data)


@FUZZ
@given(
    st.lists(st.lists(st.text(alphabet="AB,\"\n0123456789.e-", max_size=10), min_size=1,
                      max_size=9), max_size=5),
    st.booleans(),
)  # fmt: skip
def test_flat_file_of_any_cells(rows: list[list[str]], zipped: bool) -> None:
    check_flat_file(csv_file(rows, zipped))


@FUZZ
@given(
    st.lists(
        st.lists(st.tuples(st.integers(min_value=0, max_value=len(COLUMNS) - 1), cells),
                 max_size=3),
        min_size=1, max_size=6,
    ),
    st.booleans(),
)  # fmt: skip
def test_flat_file_rows_mutated(changes: list[list[tuple[int, str]]], zipped: bool) -> None:
    rows = []
    for minute, row_changes in enumerate(changes):
        row = [*ROW[:6], str(int(ROW[6]) + minute * 60 * 10**9), ROW[7]]
        for column, cell in row_changes:
            row[column] = cell.replace(",", "").replace("\n", "")
        rows.append(row)
    check_flat_file(csv_file(rows, zipped), rows=len(rows))
