"""The control-topic contract: a backfill request and its strict parser (pure).

A request is one JSON object. Anything that does not match the documented
schema (``chronox_stream/contracts/schemas/backfill-request.json``) raises ``Rejected``
with a reason code, so the control agent can dead-letter it and carry on. That file is the
published schema for the built-in sources; :func:`request_schema` renders it for any set of
declared sources (its strategy pattern names their phases).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.resources import files
from typing import Any, Literal, TypeGuard, get_args

from chronox_stream.contracts.rejects import Rejected, decode_object
from chronox_stream.domain.sources import Phase, SourceSpec, declared, strategy_pattern
from chronox_stream.domain.strategy import parse_strategy
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.domain.trading_dates import date_bound

SnapshotMethod = Literal["rest", "agg", "snapshot"]
PublishMode = Literal["kafka-first", "db-first"]

#: Polygon tickers: upper-case letters and digits, with '.' or '-' for share classes.
#: Always used with ``fullmatch``: ``match`` with ``$`` would let ``"AAPL\n"`` through.
SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9]*(?:[.\-][A-Z0-9]+)?")
MAX_SYMBOL_LENGTH = 12
MAX_SYMBOLS = 5000


def is_symbol(value: object) -> TypeGuard[str]:
    """An upper-case ticker of at most ``MAX_SYMBOL_LENGTH`` characters, as Polygon's."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_SYMBOL_LENGTH
        and SYMBOL_RE.fullmatch(value) is not None
    )


MAX_THROTTLE_MS = 60_000
#: No market data is older: an earlier ``start`` is a typo, and would plan centuries of work.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")  # fullmatch only


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillRequest:
    """One validated backfill request, as produced to the control topic."""

    request_id: str
    symbols: tuple[str, ...] = ()
    strategy: tuple[Phase, ...] | None = None
    timeframe: str = "1m"
    snapshot_method: SnapshotMethod = "snapshot"
    publish_mode: PublishMode = "kafka-first"
    enable_stream: bool = True
    throttle_ms: int = 0
    dry_run: bool = False
    refetch: bool = False
    start: datetime | None = None
    end: datetime | None = None


FIELDS = frozenset(BackfillRequest.__dataclass_fields__)
SCHEMA_FILE = "schemas/backfill-request.json"


def request_schema(specs: Iterable[SourceSpec] | None = None) -> dict[str, Any]:
    """The request's JSON Schema for the sources ``specs`` (default: those declared now).

    For the built-in sources it equals the published file (a unit test holds them together).
    """
    schema: dict[str, Any] = json.loads(files(__package__).joinpath(SCHEMA_FILE).read_text())
    pattern = strategy_pattern(declared() if specs is None else specs)
    schema["properties"]["strategy"]["pattern"] = pattern
    return schema


def parse_backfill_request(raw: bytes, *, now: datetime) -> BackfillRequest:
    """Decode and validate one control message; raise ``Rejected`` on any defect."""
    doc = decode_object(raw, FIELDS, "control message")
    start = _optional_time(doc, "start", end_of_day=False)
    end = _optional_time(doc, "end", end_of_day=True)
    _check_range(start, end, now)
    return BackfillRequest(
        request_id=_request_id(doc),
        symbols=_symbols(doc),
        strategy=_strategy(doc),
        timeframe=_choice(doc, "timeframe", "1m", tuple(TIMEFRAMES), "invalid_timeframe"),
        snapshot_method=_choice(
            doc, "snapshot_method", "snapshot", get_args(SnapshotMethod), "invalid_value"
        ),
        publish_mode=_choice(
            doc, "publish_mode", "kafka-first", get_args(PublishMode), "invalid_value"
        ),
        enable_stream=_bool(doc, "enable_stream", True),
        throttle_ms=_throttle(doc),
        dry_run=_bool(doc, "dry_run", False),
        refetch=_bool(doc, "refetch", False),
        start=start,
        end=end,
    )


def _typed(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = doc.get(key, default)
    if value is default:
        return value
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise Rejected("invalid_type", f"field {key!r} must be of type {name}")
    return value


def _request_id(doc: dict[str, Any]) -> str:
    if "request_id" not in doc:
        raise Rejected("missing_field", "field 'request_id' is required")
    value = doc["request_id"]
    if type(value) is not str:
        raise Rejected("invalid_type", "field 'request_id' must be of type str")
    if REQUEST_ID_RE.fullmatch(value) is None:
        raise Rejected(
            "invalid_value",
            "request_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
        )
    return str(value)


def _symbols(doc: dict[str, Any]) -> tuple[str, ...]:
    """The request's symbols; none (absent or empty) makes the request registry-driven."""
    symbols = _typed(doc, "symbols", list, [])
    if len(symbols) > MAX_SYMBOLS:
        raise Rejected("invalid_value", f"at most {MAX_SYMBOLS} symbols per request")
    for symbol in symbols:
        if not is_symbol(symbol):
            raise Rejected(
                "invalid_symbol",
                f"invalid symbol {str(symbol)[:40]!r}: expected an upper-case ticker of at most "
                f"{MAX_SYMBOL_LENGTH} characters (letters, digits, one '.' or '-' class suffix)",
            )
    return tuple(dict.fromkeys(symbols))


def _strategy(doc: dict[str, Any]) -> tuple[Phase, ...] | None:
    """The strategy override; ``None`` means each symbol's registry strategy (or the default)."""
    text = _typed(doc, "strategy", str, None)
    if text is None:
        return None
    try:
        return parse_strategy(text)
    except ValueError as exc:
        raise Rejected("invalid_strategy", str(exc)) from None


def _choice(
    doc: dict[str, Any], key: str, default: str, allowed: tuple[str, ...], reason: Any
) -> Any:
    value = _typed(doc, key, str, default)
    if value not in allowed:
        raise Rejected(reason, f"field {key!r} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _bool(doc: dict[str, Any], key: str, default: bool) -> bool:
    return bool(_typed(doc, key, bool, default))


def _throttle(doc: dict[str, Any]) -> int:
    value = int(_typed(doc, "throttle_ms", int, 0))
    if not 0 <= value <= MAX_THROTTLE_MS:
        raise Rejected("invalid_value", f"throttle_ms must be between 0 and {MAX_THROTTLE_MS}")
    return value


def _optional_time(doc: dict[str, Any], key: str, *, end_of_day: bool) -> datetime | None:
    """Accept ``YYYY-MM-DD`` or an ISO-8601 instant with a zone, from ``EARLIEST`` to the
    end of year 9999 in UTC.

    A date is a New York trading date (``trading_dates.date_bound``), as Polygon reads
    it: as ``start`` its first instant, as ``end`` its last (inclusive), so the range
    holds the whole extended session of both days. An instant keeps its exact meaning.
    """
    value = _typed(doc, key, str, None)
    return None if value is None else parse_time_bound(value, key, end_of_day=end_of_day)


def parse_time_bound(value: str, key: str, *, end_of_day: bool) -> datetime:
    """``value`` (``YYYY-MM-DD`` or an ISO-8601 instant with a zone) as a range bound in
    UTC, read as :func:`_optional_time` says; ``Rejected("invalid_range")`` naming ``key``
    otherwise. Requests and the read path (``chronox bars``, ``/v1/bars``) share it."""
    try:
        if len(value) == 10:
            instant = date_bound(date.fromisoformat(value), end=end_of_day)
        else:
            instant = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(
            "invalid_range",
            f"field {key!r} must be YYYY-MM-DD or an ISO-8601 time, not {value[:40]!r}",
        ) from None
    if instant.tzinfo is None:
        raise Rejected("invalid_range", f"field {key!r} needs a time zone (e.g. a trailing Z)")
    try:
        utc: datetime | None = instant.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
        utc = None
    if utc is None or utc < EARLIEST:
        raise Rejected(
            "invalid_range", f"field {key!r} must be from {EARLIEST:%Y-%m-%d} to 9999-12-31 in UTC"
        )
    return utc


def _check_range(start: datetime | None, end: datetime | None, now: datetime) -> None:
    if start is not None and start > now:
        raise Rejected("invalid_range", f"start {start.isoformat()} is in the future")
    if start is not None and end is not None and start > end:
        raise Rejected("invalid_range", "start is after end")
