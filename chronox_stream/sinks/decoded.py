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

from chronox_stream.contracts.envelope import decode_bar
from chronox_stream.contracts.rejects import Rejected
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


class DecodedEnvelopes:
    """What the first reader of a record decoded, kept for the second (see module docstring)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, int, int], tuple[bytes, Decoded]] = OrderedDict()
        self._newest: dict[tuple[str, int], int] = {}  # per partition, the newest offset kept

    def __len__(self) -> int:
        return len(self._entries)

    def decode(self, record: Record) -> Decoded:
        """``decode_record(record)``, taken from the memo when the other reader left it."""
        key = (record.topic, record.partition, record.offset)
        value = record.value or b""
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
