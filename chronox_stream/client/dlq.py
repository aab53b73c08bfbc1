"""``chronox dlq``: read the dead-letter topic, show one record, send records back after a fix.

A dead letter is the refused record's key and value, unchanged, with its reason and where it
came from in headers (:mod:`chronox_stream.contracts.dead_letters`). Replaying one produces
that key and value again to the partition of the topic it came from. Kafka records cannot be
changed, so a replay is remembered by a marker: a record on the dead-letter topic keyed by
the dead letter's ``PARTITION:OFFSET``, without a value, whose headers name the dead letter
it replayed and when.
Reading the topic folds the markers into the records they name: a record replayed before
shows it, and a second replay of it is refused unless asked for (``again``).

The selection and the rendering are pure functions; the reading and producing are the thin
shells at the end.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from chronox_stream.contracts import dead_letters as dl
from chronox_stream.runtime import kafka
from chronox_stream.runtime.names import TopicNames
from chronox_stream.runtime.topics import partitions_of, read_partitions
from chronox_stream.settings import Settings

_ID = re.compile(r"(\d+):(\d+)")
_AGO = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
#: Bytes a terminal must not get raw: C0 controls (but tab), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_MESSAGE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Replay:
    """A marker: the dead letter ``of`` (``PARTITION:OFFSET``) was replayed ``at``."""

    of: str
    at: str


@dataclass(frozen=True, slots=True)
class DeadRecord:
    """One dead letter as read back, with the replays recorded for it."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    reason: str
    message: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    notes: dict[str, str] = field(default_factory=dict)
    replays: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def time(self) -> str:
        moment = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    @property
    def source(self) -> str:
        """Where the original was, ``topic[partition]@offset`` or ``-`` (not from Kafka)."""
        if self.source_topic is None:
            return "-"
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"


def parse_id(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET`` as two integers; ``ValueError`` otherwise."""
    match = _ID.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not PARTITION:OFFSET (e.g. 3:1207)")
    return int(match[1]), int(match[2])


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO-8601 time (UTC when no zone is given) or an age such as ``30m``, ``2h``, ``7d``."""
    match = _AGO.fullmatch(text.strip())
    if match is not None:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        why = f"{text!r} is neither an ISO-8601 time nor an age like 30m, 2h, 7d"
        raise ValueError(why) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int(raw: bytes | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def parse_record(record: ConsumerRecord[bytes, bytes]) -> DeadRecord | Replay:
    """A record of the dead-letter topic: a dead letter, or a replay marker."""
    # Any producer may write this topic: a header without a value counts as absent.
    headers = {name: value for name, value in record.headers or () if value is not None}
    if dl.REPLAY_OF_HEADER in headers:
        at = headers.get(dl.REPLAYED_AT_HEADER, b"").decode(errors="replace")
        return Replay(headers[dl.REPLAY_OF_HEADER].decode(errors="replace"), at)
    known = {dl.REASON_HEADER, dl.MESSAGE_HEADER, dl.SOURCE_TOPIC_HEADER,
             dl.SOURCE_PARTITION_HEADER, dl.SOURCE_OFFSET_HEADER}  # fmt: skip
    topic = headers.get(dl.SOURCE_TOPIC_HEADER)
    return DeadRecord(
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        reason=headers.get(dl.REASON_HEADER, b"-").decode(errors="replace"),
        message=headers.get(dl.MESSAGE_HEADER, b"").decode(errors="replace"),
        source_topic=topic.decode(errors="replace") if topic is not None else None,
        source_partition=_int(headers.get(dl.SOURCE_PARTITION_HEADER)),
        source_offset=_int(headers.get(dl.SOURCE_OFFSET_HEADER)),
        notes={k: v.decode(errors="replace") for k, v in headers.items() if k not in known},
    )


def collect(records: Iterable[ConsumerRecord[bytes, bytes]]) -> list[DeadRecord]:
    """The dead letters among ``records``, oldest first, each with the times it was replayed."""
    letters: list[DeadRecord] = []
    replays: dict[str, list[str]] = {}
    for record in records:
        parsed = parse_record(record)
        if isinstance(parsed, Replay):
            replays.setdefault(parsed.of, []).append(parsed.at)
        else:
            letters.append(parsed)
    letters = [replace(r, replays=tuple(sorted(replays.get(r.id, [])))) for r in letters]
    return sorted(letters, key=lambda r: (r.timestamp_ms, r.partition, r.offset))


def select(
    records: Sequence[DeadRecord],
    *,
    ids: Sequence[tuple[int, int]] = (),
    reason: str | None = None,
    topic: str | None = None,
    since: datetime | None = None,
) -> list[DeadRecord]:
    """The records matching every filter given (``ids``: any of them)."""
    wanted = set(ids)
    since_ms = int(since.timestamp() * 1000) if since is not None else None
    return [
        r
        for r in records
        if (not wanted or (r.partition, r.offset) in wanted)
        and (reason is None or r.reason == reason)
        and (topic is None or r.source_topic == topic)
        and (since_ms is None or r.timestamp_ms >= since_ms)
    ]


def escaped(text: str) -> str:
    """``text`` with the characters a terminal would act on written as escapes."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode(), text)


def payload(data: bytes | None) -> dict[str, Any] | None:
    """Bytes for JSON: ``{"encoding": "utf-8", "data": text}``, else base64."""
    if data is None:
        return None
    try:
        return {"encoding": "utf-8", "data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(data).decode()}


def payload_text(data: bytes | None) -> str:
    """Bytes for a terminal: UTF-8 text with control characters escaped, else base64."""
    shown = payload(data)
    if shown is None:
        return "(none)"
    if shown["encoding"] == "base64":
        return f"(not UTF-8, {len(data or b'')} bytes, base64) {shown['data']}"
    return str(escaped(shown["data"]))


def line(record: DeadRecord) -> str:
    """One line of ``dlq list``: id, time, source, reason, replays and the message's start."""
    message = escaped(record.message)
    if len(message) > _MESSAGE_CHARS:
        message = message[: _MESSAGE_CHARS - 1] + "…"
    replayed = f"  replayed {len(record.replays)}x" if record.replays else ""
    source = escaped(record.source)
    return f"{record.id:<10} {record.time}  {source}  {record.reason}{replayed}  {message}"


def as_json(record: DeadRecord, *, full: bool = False) -> dict[str, Any]:
    """A record as a JSON object (``full``: with its key and value)."""
    doc: dict[str, Any] = {
        "id": record.id,
        "partition": record.partition,
        "offset": record.offset,
        "time": record.time,
        "reason": record.reason,
        "message": record.message,
        "source_topic": record.source_topic,
        "source_partition": record.source_partition,
        "source_offset": record.source_offset,
        "notes": record.notes,
        "replayed_at": list(record.replays),
    }
    if full:
        doc["key"] = payload(record.key)
        doc["value"] = payload(record.value)
    return doc


def show_text(record: DeadRecord) -> str:
    """The whole record for ``dlq show``, one field a line."""
    rows = [
        ("id", record.id),
        ("time", record.time),
        ("reason", record.reason),
        ("message", escaped(record.message)),
        ("source", escaped(record.source)),
        *((name, escaped(value)) for name, value in sorted(record.notes.items())),
        ("replayed", ", ".join(record.replays) or "never"),
        ("key", payload_text(record.key)),
        ("value", payload_text(record.value)),
    ]
    return "\n".join(f"{name + ':':<10} {value}" for name, value in rows)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a replay sends, and what it leaves out with why."""

    send: list[DeadRecord]
    skip: list[tuple[DeadRecord, str]]


def plan(records: Sequence[DeadRecord], *, again: bool) -> Plan:
    """Split the selection: records without an origin on Kafka cannot go back; records
    replayed before are left out unless ``again``."""
    send: list[DeadRecord] = []
    skip: list[tuple[DeadRecord, str]] = []
    for record in records:
        if record.source_topic is None or record.source_partition is None:
            skip.append((record, "no source topic (it did not come from Kafka)"))
        elif record.replays and not again:
            skip.append((record, f"replayed before at {record.replays[-1]} (--again sends it)"))
        else:
            send.append(record)
    return Plan(send, skip)


async def read_dead_letters(settings: Settings, since: datetime | None = None) -> list[DeadRecord]:
    """Every dead letter (from ``since`` on, by the time it was dead-lettered) with its
    replays; none when the topic does not exist."""
    partitions = await partitions_of(settings, TopicNames.for_settings(settings).dlq)
    records = await read_partitions(settings, partitions, since=since)
    return collect(records)


async def read_one(
    settings: Settings, topic: str, partition: int, offset: int
) -> ConsumerRecord[bytes, bytes] | None:
    """The record at ``topic[partition]@offset``, or None when it is not (or no longer) there."""
    tp = TopicPartition(topic, partition)
    if tp not in await partitions_of(settings, topic):
        return None
    consumer = kafka.reader(settings)
    await consumer.start()
    try:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not start <= offset < end:
            return None
        consumer.seek(tp, offset)
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                if record.offset >= offset:
                    return record if record.offset == offset else None
    finally:
        await consumer.stop()
    return None


async def original(settings: Settings, record: DeadRecord) -> tuple[bytes | None, bytes | None]:
    """The key and value to send back: the dead letter's own, or, where one was too large
    to copy, the original's, read from its topic; ``LookupError`` when that is gone."""
    if dl.KEY_OMITTED_HEADER not in record.notes and dl.VALUE_OMITTED_HEADER not in record.notes:
        return record.key, record.value
    assert record.source_topic is not None and record.source_partition is not None
    found = None
    if record.source_offset is not None:
        found = await read_one(
            settings, record.source_topic, record.source_partition, record.source_offset
        )
    if found is None:
        raise LookupError(f"the original at {record.source} is gone (retention)")
    return found.key, found.value


@dataclass(frozen=True, slots=True)
class Replayed:
    """The ids sent back, and those whose original could not be found (with why)."""

    sent: list[str]
    lost: list[tuple[str, str]]


async def replay(settings: Settings, records: Sequence[DeadRecord], now: datetime) -> Replayed:
    """Send each record's key and value to the partition of the topic it came from, then a
    marker for it. A record whose original is gone (one too large to copy, past its
    topic's retention) is not sent."""
    producer = kafka.producer(settings, client_id=f"{settings.app_id}-cli-dlq")
    dlq = TopicNames.for_settings(settings).dlq
    at = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    done = Replayed([], [])
    partitions: dict[str, set[int]] = {}
    await producer.start()
    try:
        for record in records:
            assert record.source_topic is not None
            topic = record.source_topic
            if topic not in partitions:
                partitions[topic] = {tp.partition for tp in await partitions_of(settings, topic)}
            if record.source_partition not in partitions[topic]:
                # Headers are whatever was written to the dead-letter topic: never trusted.
                done.lost.append((record.id, f"{topic} has no partition {record.source_partition}"))
                continue
            try:
                key, value = await original(settings, record)
            except LookupError as gone:
                done.lost.append((record.id, str(gone)))
                continue
            await producer.send_and_wait(
                record.source_topic, key=key, value=value, partition=record.source_partition
            )
            marker = [(dl.REPLAY_OF_HEADER, record.id.encode()),
                      (dl.REPLAYED_AT_HEADER, at.encode())]  # fmt: skip
            await producer.send_and_wait(
                dlq, key=record.id.encode(), partition=record.partition, headers=marker
            )
            done.sent.append(record.id)
    finally:
        await producer.stop()
    return done
