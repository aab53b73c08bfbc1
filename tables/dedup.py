"""The dedup table: ``SYMBOL|tf|period`` -> what was emitted for each bar of that period.

Buckets nobody wrote for the state horizon are purged (deleted: a tombstone on
the changelog). Faust writes a key's changelog record, and its local RocksDB
entry, in the partition of the event being processed, so a bucket may only be
deleted while an event of its own partition is: the partition its symbol's work
items and stream bars are in (both topics are keyed by symbol, with the default
partitioner, and have the table's partition count; Faust checks the latter).
:meth:`DedupTable.purge` therefore runs inside an agent's event, and deletes only
the stale buckets of that event's partition:

- every quarter of the horizon (and at its first call) it scans the buckets this
  worker holds and notes, per partition, those written before the horizon, and
  those from before the stamp (they are stamped now, and purged a horizon later):
  one read of the worker's buckets every 7.5 days by default;
- each call deletes (or stamps) the noted buckets of its event's partition, each
  read again first: one written since the scan is kept.

Safe because a worker handles an event of a partition only while it owns it (a
rebalance stops the agents before it revokes a partition), which is the same
fence every other write of the table relies on. A partition none of whose
symbols is backfilled or streamed again keeps its stale buckets until one is;
they do not grow meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.streams import current_event

from chronox_stream.domain.dedup import (
    Bucket,
    bucket_symbol,
    decode_bucket,
    encode_bucket,
    restamped,
    stale_buckets,
    written_at,
)
from chronox_stream.runtime.names import DEDUP_TABLE
from chronox_stream.tables.raw import raw_table

log = logging.getLogger(__name__)



def symbol_partition(symbol: str, partitions: int) -> int:
    """The partition a message keyed by ``symbol`` goes to with Kafka's default partitioner."""
    hashed: int = murmur2(symbol.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class DedupTable:
    def __init__(
        self,
        app: faust.App,
        *,
        partitions: int,
        horizon_ms: int,
        topic_config: Mapping[str, str] | None = None,
    ) -> None:
        self.table: Any = raw_table(app, DEDUP_TABLE, partitions=partitions,
                                    topic_config=topic_config)  # fmt: skip
        self._partitions = partitions
        self._horizon_ms = horizon_ms
        self._scan_every_s = horizon_ms / 4000
        self._scanned_at: float | None = None
        self._noted: dict[int, list[str]] = {}  # to purge or stamp, per partition

    def current(self, keys: set[str]) -> dict[str, Bucket]:
        """The buckets ``keys`` as the table holds them (empty for a key it does not)."""
        return {key: decode_bucket(self.table.get(key.encode())) for key in keys}

    def record(self, buckets: dict[str, Bucket]) -> None:
        now_ms = int(time.time() * 1000)
        for key, bucket in buckets.items():
            self.table[key.encode()] = encode_bucket(bucket, now_ms)

    def purge(self) -> int:
        """Delete the stale buckets of the current event's partition (see the module
        docstring); return how many. Outside an event it does nothing."""
        event = current_event()
        if event is None:
            return 0
        now_ms = int(time.time() * 1000)
        if self._scanned_at is None or time.monotonic() - self._scanned_at >= self._scan_every_s:
            self._scan(now_ms)
        purged = 0
        for key in self._noted.pop(event.message.partition, []):
            raw = self.table.get(key.encode())
            if raw is None:
                continue
            stamp = written_at(raw)
            if stamp is None:
                self.table[key.encode()] = restamped(raw, now_ms)
            elif now_ms - stamp > self._horizon_ms:
                del self.table[key.encode()]
                purged += 1
        if purged:
            log.info("purged dedup buckets not written for the state horizon",
                     extra={"count": purged})  # fmt: skip
        return purged

    def _scan(self, now_ms: int) -> None:
        values = ((key.decode(), raw) for key, raw in self.table.items() if raw is not None)
        stale, unstamped = stale_buckets(values, now_ms, self._horizon_ms)
        self._noted = {}
        for key in stale + unstamped:
            partition = symbol_partition(bucket_symbol(key), self._partitions)
            self._noted.setdefault(partition, []).append(key)
        self._scanned_at = time.monotonic()
