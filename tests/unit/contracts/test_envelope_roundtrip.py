"""The emitter's side of the envelope contract: what it publishes is what the sinks decode.

- a bar that passes ``check_bar`` decodes back from its envelope exactly (values, their
  int or float type, absent fields), and one that fails is refused by decode with the
  same message (or its envelope could not carry it: NaN and infinities are written null);
- ``split_valid``'s quick look never admits a bar ``check_bar`` refuses;
- ``envelopes`` writes a chunk byte for byte as it writes each bar alone.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronox_stream.contracts.envelope import (
    check_bar,
    decode_bar,
    envelope,
    envelopes,
    format_ts,
    refused_bar,
    split_valid,
)
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.bounds import INT64_MAX, MAX_PRICE
from chronox_stream.domain.sources import SOURCE_RANK
from chronox_stream.domain.timeframes import TIMEFRAMES

EDGE_FLOATS = [0.0, -0.0, 5e-324, 1e-300, 0.1, 0.1 + 0.2, 1e16, 1e300, MAX_PRICE,
               math.nextafter(MAX_PRICE, math.inf), math.inf, -math.inf, math.nan,
               -1.0]  # fmt: skip
EDGE_INTS = [0, 1, 100, 2**53 + 1, INT64_MAX, INT64_MAX + 1, 2**64 - 1, 2**64, -1]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=MAX_PRICE * 2),
    st.integers(min_value=-10, max_value=2**65),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(EDGE_FLOATS + EDGE_INTS),
)
prices = st.one_of(numbers, st.floats(min_value=0.0001, max_value=MAX_PRICE))
moments = st.one_of(
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2110, 1, 1),
                 timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2110, 1, 1)),
    st.sampled_from([datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC),
                     datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)]),
)  # fmt: skip
wild_bars = st.builds(
    Bar,
    symbol=st.one_of(st.sampled_from(["AAPL", "BRK.A", "aapl", "", "A" * 30, "X\x00"]),
                     st.text(max_size=6)),
    tf=st.one_of(st.sampled_from(list(TIMEFRAMES)), st.sampled_from(["2m", ""])),
    ts=moments,
    open=prices, high=prices, low=prices, close=prices,
    volume=numbers,
    vwap=st.one_of(st.none(), numbers),
    transactions=st.one_of(st.none(), st.integers(min_value=-1, max_value=2**64), numbers),
)  # fmt: skip
good_prices = st.one_of(st.floats(min_value=5e-324, max_value=MAX_PRICE),
                        st.integers(min_value=1, max_value=int(MAX_PRICE)),
                        st.sampled_from([5e-324, 0.1 + 0.2, MAX_PRICE, 1]))  # fmt: skip
good_amounts = st.one_of(st.floats(min_value=0, max_value=1e300),
                         st.integers(min_value=0, max_value=2**64 - 1),
                         st.sampled_from([-0.0, 0.0, 0, 1e16, 2**64 - 1]))  # fmt: skip
plain_bars = st.builds(
    Bar,
    symbol=st.sampled_from(["AAPL", "BRK.A", "X"]),
    tf=st.sampled_from(list(TIMEFRAMES)),
    ts=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31),
                    timezones=st.just(UTC)),
    open=good_prices, high=good_prices, low=good_prices, close=good_prices,
    volume=good_amounts,
    vwap=st.one_of(st.none(), st.floats(min_value=0, max_value=MAX_PRICE), st.just(-0.0)),
    transactions=st.one_of(st.none(), st.integers(min_value=0, max_value=INT64_MAX)),
)  # fmt: skip
bars = st.one_of(wild_bars, plain_bars)
sources = st.one_of(st.sampled_from(list(SOURCE_RANK)), st.just("scraped"))


def refusal(bar: Bar, source: str) -> str | None:
    try:
        check_bar(bar, source)  # type: ignore[arg-type]
    except Rejected as rejected:
        assert rejected.reason == "invalid_envelope"
        return rejected.message
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bars, sources)
def test_a_bar_check_bar_passes_decodes_back_exactly_and_one_it_refuses_is_refused(
    bar: Bar, source: str
) -> None:
    why = refusal(bar, source)
    if why is None:
        raw = envelope(bar, source)  # type: ignore[arg-type]
        decoded, decoded_source = decode_bar(raw)
        assert decoded_source == source
        whole = bar.ts.astimezone(UTC).replace(microsecond=0)
        assert decoded.ts == whole and decoded.ts.tzinfo is UTC
        for name in ("symbol", "tf", "open", "high", "low", "close", "volume", "vwap",
                     "transactions"):  # fmt: skip
            mine, theirs = getattr(bar, name), getattr(decoded, name)
            assert type(theirs) is type(mine) and (theirs == mine or math.isnan(mine)), name
            if type(mine) is float:
                assert math.copysign(1, theirs) == math.copysign(1, mine), "the sign of 0"
        return
    if bar.ts.utcoffset() is None:
        return  # a ts without a zone is no moment: refused before it could be written as one
    try:
        raw = envelope(bar, source)  # type: ignore[arg-type]
    except (orjson.JSONEncodeError, TypeError):
        return  # no envelope can be written: a dead letter carries refused_bar's copy
    try:
        decoded, _ = decode_bar(raw)
    except Rejected as refused:
        assert refused.message == why
    else:  # orjson wrote the bar's NaN or infinity as null: the envelope is not the bar
        assert decoded != bar


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(bars, sources), max_size=5))
def test_the_quick_look_never_admits_a_bar_check_bar_refuses(pairs: list[tuple[Bar, str]]) -> None:
    for source in {s for _, s in pairs}:
        chunk = [bar for bar, s in pairs if s == source]
        valid, refused = split_valid(chunk, source)  # type: ignore[arg-type]
        assert [b for b in chunk if refusal(b, source) is None] == valid
        assert [(b, refusal(b, source)) for b in chunk if refusal(b, source)] == [
            (b, r.message) for b, r in refused
        ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(bars, sources), max_size=40), sources)
def test_a_chunk_of_envelopes_is_byte_for_byte_each_envelope(
    pairs: list[tuple[Bar, str]], source: str
) -> None:
    valid, _ = split_valid([bar for bar, _ in pairs], source)  # type: ignore[arg-type]
    assert envelopes(valid, source) == [  # type: ignore[arg-type]
        envelope(bar, source) for bar in valid  # type: ignore[arg-type]
    ]


@settings(max_examples=100, deadline=None)
@given(bars, sources)
def test_a_refused_bars_dead_letter_copy_is_json(bar: Bar, source: str) -> None:
    doc = orjson.loads(refused_bar(bar, source))  # type: ignore[arg-type]
    assert doc["event"] == "bar" and doc["source"] == source


def test_a_plain_flat_file_bar_takes_the_quick_look() -> None:
    bar = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 2, 15, tzinfo=UTC), open=1.5,
              high=2.0, low=1.0, close=1.25, volume=100.0, transactions=4)  # fmt: skip
    assert split_valid([bar, bar], "flatpack") == ([bar, bar], [])
    assert envelopes([], "flatpack") == []


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=9, minutes=30))])))
def test_a_start_is_written_as_isoformat_writes_it_in_utc(ts: datetime) -> None:
    expected = ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    assert format_ts(ts) == expected
