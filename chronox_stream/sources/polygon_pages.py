"""Polygon REST bodies to bars (pure): the aggregates page and the single-ticker snapshot.

Contract: each parser takes a body's raw bytes, whatever they are, and returns
typed values or raises :class:`MalformedPage`, and nothing else (a
property-based test holds them to it). A body is malformed when it is not a
JSON object; when ``results`` is neither absent, ``null`` nor a list of
objects; when a bar lacks ``o``, ``h``, ``l``, ``c``, ``v`` or ``t``; when a
number is not a finite JSON number (strings and booleans are refused, not
coerced); when a volume or trade count is negative or a count does not fit
int64; when ``t`` is not a whole number of epoch milliseconds from 1970 up to
the year 9999; or when ``next_url`` is neither absent, ``null`` nor a string.
One malformed bar spoils its whole page: dropping it would leave a silent hole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from chronox_stream.domain.bars import Bar, ms_to_utc
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.domain.windows import window_start

#: The latest bar time accepted, epoch ms: far enough from datetime's end for window arithmetic.
MAX_MS = int(datetime(9999, 1, 1, tzinfo=UTC).timestamp() * 1000)
INT64_MAX = 2**63 - 1


class MalformedPage(ValueError):
    """A REST body that is not what Polygon sends; the message names the field, not its value."""


@dataclass(frozen=True, slots=True)
class AggregatesPage:
    """One page of ``/v2/aggs``: its bars in the order sent, and the link to the next page."""

    bars: list[Bar]
    next_url: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The single-ticker snapshot's current minute bar and day bar (either may be absent)."""

    minute: Bar | None
    day: Bar | None


def parse_aggregates_page(symbol: str, tf: str, raw: bytes) -> AggregatesPage:
    """The bars (of ``symbol`` at ``tf``) and ``next_url`` of an aggregates body."""
    body = _document(raw)
    rows = body.get("results")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise MalformedPage("results is not a list")
    bars = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MalformedPage(f"results[{i}] is not an object")
        bars.append(_bar(symbol, tf, row, f"results[{i}]"))
    next_url = body.get("next_url")
    if next_url is not None and not isinstance(next_url, str):
        raise MalformedPage("next_url is not a string")
    return AggregatesPage(bars, next_url or None)


def parse_snapshot(symbol: str, raw: bytes) -> Snapshot:
    """``ticker.min`` as the current minute bar and ``ticker.day`` as the day bar.

    A minute without ``t`` is no bar; the day bar needs ``o`` and the
    snapshot's ``updated`` time (ns), whose New York day is the bar's.
    """
    ticker = _document(raw).get("ticker")
    if not isinstance(ticker, dict):
        raise MalformedPage("ticker is not an object")
    minute = _optional_object(ticker, "min")
    day = _optional_object(ticker, "day")
    minute_bar = _bar(symbol, "1m", minute, "ticker.min") if minute.get("t") else None
    day_bar = None
    if day.get("o") and ticker.get("updated"):
        updated_ms = _whole(ticker["updated"], "ticker.updated") // 1_000_000
        start = window_start(_time(updated_ms, "ticker.updated"), TIMEFRAMES["1d"])
        day_bar = _bar(symbol, "1d", {**day, "t": int(start.timestamp() * 1000)}, "ticker.day")
    return Snapshot(minute_bar, day_bar)


def _document(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedPage("the body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedPage("the body is not a JSON object")
    return body


def _optional_object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPage(f"{key} is not an object")
    return value


def _bar(symbol: str, tf: str, row: dict[str, Any], where: str) -> Bar:
    vwap = row.get("vw")
    count = row.get("n")
    bar = Bar(
        symbol=symbol,
        tf=tf,
        ts=_time(_whole(_field(row, "t", where), f"{where}.t"), f"{where}.t"),
        open=_number(_field(row, "o", where), f"{where}.o"),
        high=_number(_field(row, "h", where), f"{where}.h"),
        low=_number(_field(row, "l", where), f"{where}.l"),
        close=_number(_field(row, "c", where), f"{where}.c"),
        volume=_number(_field(row, "v", where), f"{where}.v"),
        vwap=_number(vwap, f"{where}.vw") if vwap is not None else None,
        transactions=_whole(count, f"{where}.n") if count is not None else None,
    )
    if bar.volume < 0 or (bar.transactions is not None and bar.transactions < 0):
        raise MalformedPage(f"{where} has a negative volume or trade count")
    return bar


def _field(row: dict[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise MalformedPage(f"{where}.{key} is missing")
    return row[key]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedPage(f"{where} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise MalformedPage(f"{where} is not finite")
    return number


def _whole(value: Any, where: str) -> int:
    """A whole JSON number (``3`` or ``3.0``) within int64."""
    number = _number(value, where)
    if not number.is_integer() or not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise MalformedPage(f"{where} is not a whole number within int64")
    return int(value)


def _time(ms: int, where: str) -> datetime:
    if not 0 <= ms < MAX_MS:
        raise MalformedPage(f"{where} is not a time between 1970 and 9999")
    return ms_to_utc(ms)
