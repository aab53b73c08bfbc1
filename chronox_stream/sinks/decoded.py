"""Decode each envelope once for the two sinks of a worker.

The PostgreSQL and Redis sinks of one worker read the same bar topics in two consumer
groups, so each would decode (and validate) every envelope: the same work twice.
:class:`DecodedEnvelopes` keeps what the first sink to read a record made of it, the
:class:`~chronox_stream.sinks.base.SinkRecord` or the :class:`Rejected` refusal, under the
record's (topic, partition, offset), for the other sink to take.

The contract: :meth:`DecodedEnvelopes.decode` gives exactly what decoding the record's
bytes gives, whatever is memoized. A memoized result is used only when its bytes equal the
record's (so another record at the same offset, after a topic was recreated, is decoded
afresh), and it is taken out when used: each record is read once per group. The two sinks
stay independent: one that runs far behind the other simply misses and decodes itself,
and keeps nothing (a record below the newest one kept of its partition was passed by the
other reader already). The memo is bounded (the oldest entries go first), so memory stays
flat whatever the lag, and entries the other sink never takes (another worker reads those
partitions in its group) age out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC

from chronox_stream.contracts.envelope import decode_bar
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.sources import Source
from chronox_stream.runtime.loop import Record
from chronox_stream.sinks.base import SinkRecord

Decoded = SinkRecord | Rejected


def decode_record(record: Record) -> Decoded:
    """The sink record a consumed envelope carries, or why it is refused."""
    value = record.value or b""
    try:
        bar, source = decode_bar(value)
    except Rejected as rejected:
        return rejected
    return SinkRecord(bar, source, value)


class Seeded:
    """Sink records of envelopes this worker made, by the envelope's bytes; the newest
    ``capacity`` only (the oldest go first).

    Entries are not taken out when used: both sinks read each envelope. Memory: an entry
    (its bytes, about 275 for a minute bar, the bar and its values, the record and the
    table slot) takes about 0.75 KB (measured with tracemalloc), so the default 50,000
    hold about 38 MB; that is several seconds of a backfill ahead of the sinks, and a sink
    further behind simply decodes what aged out.
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._records: OrderedDict[bytes, SinkRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def add(self, source: Source, bars: Sequence[Bar], payloads: Sequence[bytes]) -> None:
        """Seed the envelope ``payloads[i]`` of ``bars[i]`` from ``source``.

        Each bar must pass :func:`~chronox_stream.contracts.envelope.check_bar` and its
        payload be its envelope. Kept only when decoding the payload gives the bar back
        as it is: a ``ts`` in UTC on a whole second (the envelope's ``ts`` has no
        fraction, and decodes to UTC); the values travel exactly (orjson writes the
        shortest text of a double, and an int as an int).
        """
        records = self._records
        for bar, payload in zip(bars, payloads, strict=True):
            ts = bar.ts
            if ts.tzinfo is UTC and ts.microsecond == 0:
                records[payload] = SinkRecord(bar, source, payload)
        while len(records) > self._capacity:
            records.popitem(last=False)

    def get(self, payload: bytes) -> SinkRecord | None:
        return self._records.get(payload)


class DecodedEnvelopes:
    """What the first reader of a record decoded, kept for the second (see module docstring)."""

    def __init__(self, capacity: int, *, seeded: Seeded | None = None) -> None:
        self._capacity = capacity
        self._seeded = seeded
        self._entries: OrderedDict[tuple[str, int, int], tuple[bytes, Decoded]] = OrderedDict()
        self._newest: dict[tuple[str, int], int] = {}  # per partition, the newest offset kept

    def __len__(self) -> int:
        return len(self._entries)

    def decode(self, record: Record) -> Decoded:
        """``decode_record(record)``, taken from what this worker made, or from the memo
        when the other reader left it."""
        value = record.value or b""
        if self._seeded is not None:
            made = self._seeded.get(value)
            if made is not None:
                return made
        key = (record.topic, record.partition, record.offset)
        entry = self._entries.pop(key, None)
        if entry is not None and entry[0] == value:
            return entry[1]
        decoded = decode_record(record)
        partition = (record.topic, record.partition)
        if record.offset > self._newest.get(partition, -1):
            self._newest[partition] = record.offset
            self._entries[key] = (value, decoded)
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return decoded
