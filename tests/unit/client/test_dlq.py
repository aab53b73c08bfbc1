"""Reading dead letters back: markers fold into the records they name, filters select, and
payloads reach a terminal or a JSON document safely."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord

from chronox_stream.client import dlq
from chronox_stream.contracts.dead_letters import fitted, origin_headers
from chronox_stream.contracts.rejects import Rejected

NOW = datetime(2024, 1, 17, 15, 30, tzinfo=UTC)
AT_MS = int(NOW.timestamp() * 1000)


def record(partition: int, offset: int, key: bytes | None, value: bytes | None,
           headers: dict[str, bytes], ts: int = AT_MS) -> ConsumerRecord[bytes, bytes]:  # fmt: skip
    return ConsumerRecord("t.dlq", partition, offset, ts, 0, key, value, None, 0, 0,
                          tuple(headers.items()))  # fmt: skip


def dead(partition: int, offset: int, value: bytes, reason: str = "invalid_json",
         topic: str = "t.control", ts: int = AT_MS) -> ConsumerRecord[bytes, bytes]:  # fmt: skip
    """A dead letter as the worker writes it (``fitted`` with the origin's headers)."""
    letter = fitted(b"k", value, Rejected(reason, "bad"), origin_headers(topic, 2, 40 + offset))  # type: ignore[arg-type]
    return record(partition, offset, letter.key, letter.value, letter.headers, ts)


def marker(of: str, at: str) -> ConsumerRecord[bytes, bytes]:
    return record(0, 99, of.encode(), None, {"chronox-replay-of": of.encode(),
                                             "chronox-replayed-at": at.encode()})  # fmt: skip


def test_markers_fold_into_the_records_they_name_and_records_come_oldest_first() -> None:
    records = dlq.collect([dead(1, 5, b"x", ts=AT_MS + 10), dead(0, 3, b"y"),
                           marker("1:5", "2024-01-17T15:31:00Z")])  # fmt: skip
    assert [r.id for r in records] == ["0:3", "1:5"]
    assert records[0].replays == () and records[1].replays == ("2024-01-17T15:31:00Z",)
    assert records[1].source == "t.control[2]@45"
    assert records[0].time == "2024-01-17T15:30:00.000Z"


def test_filters_select_by_id_reason_topic_and_time() -> None:
    records = dlq.collect([dead(0, 1, b"a"), dead(0, 2, b"b", reason="invalid_symbol"),
                           dead(1, 1, b"c", topic="t.ticks.raw", ts=AT_MS + 60_000)])  # fmt: skip
    assert [r.id for r in dlq.select(records, reason="invalid_symbol")] == ["0:2"]
    assert [r.id for r in dlq.select(records, topic="t.ticks.raw")] == ["1:1"]
    assert [r.id for r in dlq.select(records, ids=[(0, 1), (1, 1)])] == ["0:1", "1:1"]
    since = datetime.fromtimestamp((AT_MS + 1) / 1000, UTC)
    assert [r.id for r in dlq.select(records, since=since)] == ["1:1"]
    assert dlq.select(records, ids=[(0, 1)], reason="invalid_symbol") == []


def test_a_replay_leaves_out_what_cannot_go_back_and_what_went_back_before() -> None:
    websocket = fitted(None, b"{}", Rejected("invalid_json", "bad"), {})
    records = dlq.collect([dead(0, 1, b"a"), dead(0, 2, b"b"),
                           record(0, 3, None, websocket.value, websocket.headers),
                           marker("0:2", "2024-01-17T15:31:00Z")])  # fmt: skip
    plan = dlq.plan(records, again=False)
    assert [r.id for r in plan.send] == ["0:1"]
    assert [(r.id, why.split(" (")[0]) for r, why in plan.skip] == [
        ("0:2", "replayed before at 2024-01-17T15:31:00Z"), ("0:3", "no source topic")]  # fmt: skip
    assert [r.id for r in dlq.plan(records, again=True).send] == ["0:1", "0:2"]


def test_text_is_shown_with_its_control_characters_escaped_and_bytes_as_base64() -> None:
    text = 'ok "é" \x1b[2J\x07\tend\n'.encode()
    assert dlq.payload_text(text) == 'ok "é" \\x1b[2J\\x07\tend\\n'
    assert dlq.payload(text) == {"encoding": "utf-8", "data": text.decode()}
    binary = b"\xff\x00\xfe"
    assert dlq.payload(binary) == {"encoding": "base64", "data": base64.b64encode(binary).decode()}
    assert dlq.payload_text(binary).endswith(base64.b64encode(binary).decode())
    assert dlq.payload_text(None) == "(none)"


def test_a_hostile_message_or_topic_cannot_reach_the_terminal_raw() -> None:
    (letter,) = dlq.collect([dead(0, 1, b"a", topic="t.\x1b]0;owned\x07")])
    assert "\x1b" not in dlq.line(letter) and "\x1b" not in dlq.show_text(letter)


def test_ids_and_times_are_parsed_or_refused() -> None:
    assert dlq.parse_id(" 3:1207 ") == (3, 1207)
    for wrong in ("3", "a:1", "3:-1", "3:1:2"):
        with pytest.raises(ValueError, match="PARTITION:OFFSET"):
            dlq.parse_id(wrong)
    assert dlq.parse_since("90m", NOW) == datetime(2024, 1, 17, 14, 0, tzinfo=UTC)
    assert dlq.parse_since("2d", NOW) == datetime(2024, 1, 15, 15, 30, tzinfo=UTC)
    assert dlq.parse_since("2024-01-17T10:00", NOW) == datetime(2024, 1, 17, 10, tzinfo=UTC)
    assert dlq.parse_since("2024-01-17T10:00-05:00", NOW) == datetime(2024, 1, 17, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="age like"):
        dlq.parse_since("yesterday", NOW)


def test_a_record_from_another_producer_with_empty_or_wrong_headers_is_listed() -> None:
    """Headers without a value, or with numbers that are no numbers, read as absent."""
    strange = ConsumerRecord("t.dlq", 0, 7, AT_MS, 0, None, b"\xff\xfe", None, 0, 0,
                             (("chronox-reason", None), ("chronox-source-partition", b"x9"),
                              ("other", b"\xff")))  # fmt: skip
    (letter,) = dlq.collect([strange])  # type: ignore[list-item]
    assert (letter.reason, letter.source_partition, letter.notes) == ("-", None, {"other": "\ufffd"})
