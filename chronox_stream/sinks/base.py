"""What a store the bar topics are mirrored to implements: one batch write.

The sink agent (``agents/sink.py``) runs one :class:`~chronox_stream.runtime.loop.BatchLoop`
per store and hands the store the valid envelopes of each batch, in offset order within
each partition, through :meth:`BarSink.store`. The loop commits the batch's offsets when
it returns, so the contract of a store is:

- ``store`` returns only once the batch is durably written (there is no separate flush);
- writing a batch again changes nothing (a batch is replayed after a crash or a rebalance);
- a failure of the world (the store unreachable, a timeout) raises an error that
  :func:`~chronox_stream.runtime.failures.is_world_failure` knows: the batch is retried;
- a store that judges values (PostgreSQL) raises any other error when it refuses one:
  the batch is then split until the refused envelope is found and dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.sources import Source


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One valid envelope of a bar topic: its bar, its source and its bytes as consumed."""

    bar: Bar
    source: Source
    payload: bytes


class BarSink(Protocol):
    """A store of bars: see the module docstring for the contract of :meth:`store`."""

    async def store(self, batch: Sequence[SinkRecord]) -> None: ...
