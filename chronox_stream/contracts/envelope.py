"""Envelope v1: the bar message of the bar topics and Redis, byte-stable, serialized with orjson.

The shape is a public contract of the bar topics, Redis and downstream
consumers: anything new goes under ``features`` or into a new ``version``. Any
producer may write the bar topics, so decoding checks every value the sinks
store (:func:`decode_bar`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from chronox_stream.contracts.control import is_symbol
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.bounds import INT64_MAX, MAX_PRICE, is_amount, is_count, is_price
from chronox_stream.domain.sources import SOURCE_RANK, Source
from chronox_stream.domain.timeframes import TIMEFRAMES

VERSION = "v1"


@lru_cache(maxsize=16_384)
def format_ts(ts: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC, the only timestamp form an envelope carries.

    Remembered, as is :func:`parse_ts`: a market's bars of one window share their start,
    and each bar's is formatted and parsed several times on its way (envelope,
    ``ticks.bars`` hop, bar topics, sinks). 16,384 moments (about 3 MB) are 17 days of
    extended-hours minutes: a backfill's work items walk the same days one symbol after
    another, and with fewer than its days' minutes every symbol would find none left."""
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    clock = _CLOCK[ts.hour * 60 + ts.minute] + _SECONDS[ts.second]
    return _day_text(ts.year, ts.month, ts.day) + clock


#: The text of each minute of a day and of each second of a minute: a bar's start is put
#: together from them (and its day's text) in a quarter of the time ``isoformat`` takes.
_CLOCK = [f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60)]
_SECONDS = [f"{second:02d}Z" for second in range(60)]


@lru_cache(maxsize=64)
def _day_text(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}T"


_TS_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


@lru_cache(maxsize=4096)
def parse_ts(text: str) -> datetime:
    """The UTC moment of a ``YYYY-MM-DDTHH:MM:SSZ`` string; ``ValueError`` for any other form."""
    if _TS_FORM.fullmatch(text) is None:
        raise ValueError(f"timestamp {text[:40]!r} is not YYYY-MM-DDTHH:MM:SSZ")
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)




#: Where one envelope ends and the next starts in the JSON array of a chunk's envelopes.
_BETWEEN = b',{"event":"bar",'


def envelopes(bars: Sequence[Bar], source: Source, *, in_progress: bool = False) -> list[bytes]:
    """The wire form of each of ``bars`` from ``source``, made with one ``orjson`` call for
    the lot: the only writer of envelopes.

    Keys come in the order of the README's Envelope v1 section; vwap and transactions go
    under ``features`` only when known, and ``in_progress: true`` marks a live bar that is
    not final (Redis only). ``dedup_key`` is ``SYMBOL|tf|ts``: one key per bar, whatever its
    source or revision.

    The bars must pass :func:`check_bar`: then no string in an envelope (a symbol, a known
    ``tf`` or source, a formatted ``ts``) can hold the text between two envelopes of the
    array, so splitting the array there gives each envelope whole. (One ``orjson.dumps``
    per bar would be a fifth faster, but each of its results keeps orjson's write buffer,
    about 4 KB: 50,000 envelopes held by the sinks' memo would cost some 200 MB.)
    """
    if not bars:
        return []
    docs = []
    for bar in bars:
        ts = format_ts(bar.ts)
        features: dict[str, Any] = {}
        if bar.vwap is not None:
            features["vwap"] = bar.vwap
        if bar.transactions is not None:
            features["transactions"] = bar.transactions
        if in_progress:
            features["in_progress"] = True
        docs.append({
            "event": "bar",
            "symbol": bar.symbol,
            "tf": bar.tf,
            "ts": ts,
            "ohlcv": {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close,
                      "volume": bar.volume},
            "features": features,
            "source": source,
            "version": VERSION,
            "dedup_key": f"{bar.symbol}|{bar.tf}|{ts}",
        })  # fmt: skip
    first, *rest = orjson.dumps(docs)[1:-1].split(_BETWEEN)
    if len(rest) + 1 != len(bars):
        raise ValueError("a bar's strings hold the text between two envelopes")
    return [first, *(_BETWEEN[1:] + part for part in rest)]


def envelope(bar: Bar, source: Source) -> bytes:
    """The envelope of one bar (:func:`envelopes` of a chunk of one)."""
    return envelopes((bar,), source)[0]


OHLCV = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
#: Bars start from 1970 to 2100: PostgreSQL takes any of them, and none is in seconds or ns.
TS_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
#: orjson writes integers up to 2^64 - 1 and reads larger ones as floats.
UINT64_MAX = 2**64 - 1


def _refused(message: str) -> Rejected:
    return Rejected("invalid_envelope", message)


def _number(value: Any) -> bool:
    """An int or a float (a bool is neither here)."""
    return type(value) is float or type(value) is int


def _checked(raw: bytes) -> tuple[dict[str, Any], datetime]:
    """The document of a v1 bar envelope and its ``ts``; ``Rejected("invalid_envelope")``
    naming the first defect otherwise, whatever the bytes.

    Checked here, not by the database: a value PostgreSQL refuses (a NUL byte in a symbol,
    a count beyond ``bigint``) would fail its batch on every retry and stall the sink. The
    rules are those of requests and ticks: the symbol rule, a known ``tf``, ``ts`` in the
    one form and from 1970 to 2100, prices > 0 and at most ``MAX_PRICE``, a finite volume
    >= 0, ``vwap`` from 0 to ``MAX_PRICE``, ``transactions`` a whole number in int64.
    :func:`check_bar` holds a bar about to be published to the same rules.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _refused(f"not JSON: {exc}") from None
    if type(doc) is not dict or doc.get("version") != VERSION or doc.get("event") != "bar":
        raise _refused("not a v1 bar envelope (event 'bar', version 'v1')")
    symbol, tf, text = doc.get("symbol"), doc.get("tf"), doc.get("ts")
    _check_names(symbol, tf)
    try:
        ts = parse_ts(text if type(text) is str else "")
    except ValueError:
        raise _refused(f"ts {str(text)[:40]!r} is not YYYY-MM-DDTHH:MM:SSZ") from None
    _check_ts_range(ts, text)
    if doc.get("dedup_key") != f"{symbol}|{tf}|{text}":
        raise _refused("dedup_key does not match symbol|tf|ts")
    source = doc.get("source")
    _check_source(source)
    ohlcv, features = doc.get("ohlcv"), doc.get("features")
    if type(ohlcv) is not dict:
        raise _refused("ohlcv must be an object")
    _check_ohlcv(*(ohlcv.get(name) for name in OHLCV))
    if features is not None:
        if type(features) is not dict:
            raise _refused("features must be an object")
        _check_features(features.get("vwap"), features.get("transactions"))
    return doc, ts


def _check_names(symbol: Any, tf: Any) -> None:
    if not is_symbol(symbol):
        raise _refused(f"invalid symbol {str(symbol)[:40]!r}")
    if type(tf) is not str or tf not in TIMEFRAMES:
        raise _refused(f"unknown tf {str(tf)[:40]!r}; expected one of {', '.join(TIMEFRAMES)}")


def _check_ts_range(ts: datetime, text: Any) -> None:
    if not TS_RANGE[0] <= ts < TS_RANGE[1]:
        raise _refused(f"ts {text} is out of range (1970 to 2100)")


def _check_source(source: Any) -> None:
    if type(source) is not str or source not in SOURCE_RANK:
        raise _refused(f"unknown source {str(source)[:40]!r}")


def _check_ohlcv(*values: Any) -> None:
    """Open, high, low, close and volume as an envelope may carry them."""
    for name, value in zip(PRICES, values, strict=False):
        if not _number(value) or not is_price(value):
            raise _refused(f"{name} must be a number > 0 and at most {MAX_PRICE:,.0f}")
    volume = values[4]
    too_long = type(volume) is int and volume > UINT64_MAX  # orjson cannot write it
    if not _number(volume) or not is_amount(volume) or too_long:
        raise _refused("volume must be a finite number >= 0")


def _check_features(vwap: Any, transactions: Any) -> None:
    """``vwap`` and ``transactions`` (``None`` when absent) as an envelope may carry them."""
    if vwap is not None and (not _number(vwap) or not 0 <= vwap <= MAX_PRICE):
        raise _refused(f"vwap must be a number from 0 to {MAX_PRICE:,.0f}")
    if transactions is not None and (type(transactions) is not int or not is_count(transactions)):
        raise _refused(f"transactions must be a whole number from 0 to {INT64_MAX}")


def check_bar(bar: Bar, source: Source) -> None:
    """``Rejected("invalid_envelope")`` naming the first defect of ``bar`` from ``source``
    that would make :func:`decode_bar` refuse its envelope (the same rules, the same
    messages): the emitter publishes only bars that pass, so every envelope it makes is
    one the sinks take. A ``ts`` without a zone is refused too (it names no moment)."""
    _check_names(bar.symbol, bar.tf)
    ts = bar.ts
    if type(ts) is not datetime or ts.utcoffset() is None:
        raise _refused(f"ts {str(ts)[:40]!r} has no time zone")
    _check_ts_range(ts, format_ts(ts))
    _check_source(source)
    _check_ohlcv(bar.open, bar.high, bar.low, bar.close, bar.volume)
    _check_features(bar.vwap, bar.transactions)


def split_valid(
    bars: Iterable[Bar], source: Source
) -> tuple[list[Bar], list[tuple[Bar, Rejected]]]:
    """``bars`` that pass :func:`check_bar`, and the others with why, in order.

    The common shape (known names, a UTC ``ts`` in range, float prices and volume within
    bounds) is recognised at a glance; any other bar is judged by :func:`check_bar` itself,
    the one definition (a property test holds the glance to imply it).
    """
    valid: list[Bar] = []
    refused: list[tuple[Bar, Rejected]] = []
    names: set[tuple[str, str]] = set()  # (symbol, tf) pairs seen valid
    plain_source = type(source) is str and source in SOURCE_RANK
    low, high = TS_RANGE
    for bar in bars:
        ts, vwap, transactions, volume = bar.ts, bar.vwap, bar.transactions, bar.volume
        if (
            plain_source
            and type(bar.symbol) is str and type(bar.tf) is str and (bar.symbol, bar.tf) in names
            and type(ts) is datetime and ts.tzinfo is UTC and low <= ts < high
            and type(bar.open) is float and 0.0 < bar.open <= MAX_PRICE
            and type(bar.high) is float and 0.0 < bar.high <= MAX_PRICE
            and type(bar.low) is float and 0.0 < bar.low <= MAX_PRICE
            and type(bar.close) is float and 0.0 < bar.close <= MAX_PRICE
            and type(volume) is float and 0.0 <= volume < math.inf
            and (vwap is None or (type(vwap) is float and 0.0 <= vwap <= MAX_PRICE))
            and (transactions is None or (type(transactions) is int
                                          and 0 <= transactions <= INT64_MAX))
        ):  # fmt: skip
            valid.append(bar)
            continue
        try:
            check_bar(bar, source)
        except Rejected as rejected:
            refused.append((bar, rejected))
            continue
        names.add((bar.symbol, bar.tf))
        valid.append(bar)
    return valid, refused


def refused_bar(bar: Bar, source: Source) -> bytes:
    """The dead letter's copy of a bar refused before publication: the envelope it would
    have been, with each value JSON cannot carry as is (NaN, an infinity, an integer beyond
    64 bits, a ``ts`` that is no moment, a name that is no string) as its text."""
    def plain(value: Any) -> Any:
        if value is None or type(value) is str or type(value) is bool:
            return value
        if type(value) is float and math.isfinite(value):
            return value
        if type(value) is int and -(2**63) <= value <= UINT64_MAX:
            return value
        return str(value)[:100]

    ts = bar.ts
    text = format_ts(ts) if type(ts) is datetime and ts.utcoffset() is not None else plain(ts)
    features = {name: plain(value) for name, value in
                (("vwap", bar.vwap), ("transactions", bar.transactions)) if value is not None}
    return orjson.dumps({
        "event": "bar", "symbol": plain(bar.symbol), "tf": plain(bar.tf), "ts": text,
        "ohlcv": {name: plain(getattr(bar, name)) for name in OHLCV}, "features": features,
        "source": plain(source), "version": VERSION,
    })  # fmt: skip


def decode_bar(raw: bytes) -> tuple[Bar, Source]:
    """The bar a v1 envelope carries and its source: the only reader of envelopes.

    ``Rejected("invalid_envelope")`` when ``raw`` is not a valid v1 envelope.
    """
    doc, ts = _checked(raw)
    ohlcv = doc["ohlcv"]
    features = doc.get("features") or {}
    bar = Bar(
        symbol=doc["symbol"],
        tf=doc["tf"],
        ts=ts,
        open=ohlcv["open"],
        high=ohlcv["high"],
        low=ohlcv["low"],
        close=ohlcv["close"],
        volume=ohlcv["volume"],
        vwap=features.get("vwap"),
        transactions=features.get("transactions"),
    )
    return bar, doc["source"]
