"""The decode memo of the two sinks: each envelope decoded once, the same result as decoding."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiokafka import TopicPartition

from chronox_stream.contracts import envelope as wire
from chronox_stream.contracts.envelope import decode_bar, envelopes, split_valid
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.sources import Source
from chronox_stream.sinks import decoded as decoded_module
from chronox_stream.sinks.base import SinkRecord
from chronox_stream.sinks.decoded import DecodedEnvelopes, Seeded, decode_record
from tests.unit.runtime.fakes import record

TP = TopicPartition("chronox.bars.1m", 3)
T0 = datetime(2024, 1, 16, 15, tzinfo=UTC)


def envelope(minute: int, volume: float = 10.0) -> bytes:
    bar = Bar(symbol="MSFT", tf="1m", ts=T0 + timedelta(minutes=minute),
              open=1, high=2, low=0.5, close=1.5, volume=volume)  # fmt: skip
    return wire.envelope(bar, "flatpack")


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bytes every real decode was run on."""
    seen: list[bytes] = []

    def counting(raw: bytes) -> tuple[Bar, Source]:
        seen.append(raw)
        return decode_bar(raw)

    monkeypatch.setattr(decoded_module, "decode_bar", counting)
    return seen


def test_the_second_reader_of_a_record_takes_what_the_first_decoded(decodes: list[bytes]) -> None:
    memo = DecodedEnvelopes(capacity=100)
    values = [envelope(m) for m in range(10)] + [b"{not json"]
    first = [memo.decode(record(TP, offset, value)) for offset, value in enumerate(values)]
    second = [memo.decode(record(TP, offset, bytes(value))) for offset, value in enumerate(values)]
    assert decodes == values, "each envelope decoded once"
    assert second == first
    assert [type(d) for d in first] == [SinkRecord] * 10 + [Rejected]
    assert len(memo) == 0, "a result is taken out when the second reader uses it"


def test_what_the_memo_gives_is_what_decoding_gives() -> None:
    memo = DecodedEnvelopes(capacity=100)
    for offset, value in enumerate([envelope(0), envelope(1, volume=-1), b"", b"[]"]):
        for _reader in range(2):
            got = memo.decode(record(TP, offset, value))
            expected = decode_record(record(TP, offset, value))
            if isinstance(expected, Rejected):
                assert isinstance(got, Rejected)
                assert (got.reason, got.message) == (expected.reason, expected.message)
            else:
                assert got == expected and got.payload == value


def test_another_record_at_the_same_offset_is_decoded_afresh(decodes: list[bytes]) -> None:
    memo = DecodedEnvelopes(capacity=100)
    memo.decode(record(TP, 7, envelope(0)))
    got = memo.decode(record(TP, 7, envelope(5)))
    assert isinstance(got, SinkRecord) and got.bar.ts == T0 + timedelta(minutes=5)
    assert decodes == [envelope(0), envelope(5)]
    other_partition = memo.decode(record(TopicPartition(TP.topic, 4), 7, envelope(5)))
    assert isinstance(other_partition, SinkRecord) and len(decodes) == 3


def test_the_memo_stays_bounded_and_a_reader_far_behind_decodes_itself(
    decodes: list[bytes],
) -> None:
    memo = DecodedEnvelopes(capacity=50)
    values = [envelope(m) for m in range(200)]
    ahead = [memo.decode(record(TP, offset, value)) for offset, value in enumerate(values)]
    assert len(memo) == 50
    behind = [memo.decode(record(TP, offset, value)) for offset, value in enumerate(values)]
    assert behind == ahead and len(memo) <= 50
    assert len(decodes) == 2 * 200 - 50, "only the last 50 the leader decoded were kept"


def seeded_with(bars: list[Bar], source: Source = "flatpack", capacity: int = 100) -> Seeded:
    seeded = Seeded(capacity)
    valid, refused = split_valid(bars, source)
    assert not refused
    seeded.add(source, valid, envelopes(valid, source))
    return seeded


def minute_bar(minute: int, **values: Any) -> Bar:
    fields: dict[str, Any] = {"open": 1.0, "high": 2, "low": 0.5, "close": 1.5, "volume": 10,
                              "vwap": None, "transactions": 7, **values}  # fmt: skip
    return Bar(symbol="MSFT", tf="1m", ts=T0 + timedelta(minutes=minute), **fields)


def test_envelopes_the_worker_made_are_taken_without_decoding_as_decoding_gives_them(
    decodes: list[bytes],
) -> None:
    bars = [minute_bar(m, volume=v) for m, v in enumerate([10, 10.0, -0.0, 2**64 - 1, 1e-300])]
    bars += [minute_bar(9, vwap=1.25, transactions=None)]
    seeded = seeded_with(bars)
    memo = DecodedEnvelopes(capacity=100, seeded=seeded)
    payloads = envelopes(bars, "flatpack")
    for _reader in range(2):  # both sinks take it; another producer's equal bytes too
        for offset, value in enumerate(payloads):
            got = memo.decode(record(TP, offset, bytes(value)))
            assert got == SinkRecord(*decode_bar(value), value) and got.payload == value
            assert isinstance(got, SinkRecord)
            assert [type(getattr(got.bar, f)) for f in ("volume", "vwap", "transactions")] == [
                type(getattr(bars[offset], f)) for f in ("volume", "vwap", "transactions")]
    assert decodes == [], "nothing decoded"
    other = memo.decode(record(TP, 99, envelope(30)))
    assert isinstance(other, SinkRecord) and decodes == [envelope(30)], "the rest is decoded"


def test_only_bars_their_envelope_gives_back_exactly_are_seeded() -> None:
    new_york = timezone(timedelta(hours=-5))
    exact = minute_bar(0)
    inexact = [replace(minute_bar(1), ts=minute_bar(1).ts + timedelta(microseconds=1)),
               replace(minute_bar(2), ts=minute_bar(2).ts.astimezone(new_york))]  # fmt: skip
    seeded = seeded_with([exact, *inexact])
    assert len(seeded) == 1 and seeded.get(envelopes([exact], "flatpack")[0]) is not None


def test_the_seeded_envelopes_stay_bounded() -> None:
    seeded = seeded_with([minute_bar(m) for m in range(120)], capacity=50)
    assert len(seeded) == 50
    kept = [seeded.get(p) is not None for p in envelopes([minute_bar(m) for m in range(120)],
                                                          "flatpack")]  # fmt: skip
    assert kept == [False] * 70 + [True] * 50, "the newest are kept"
