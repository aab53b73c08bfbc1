"""Writing tables for a batch of events: each write goes to its own event's partition.

Faust picks a table write's changelog partition (and local RocksDB partition)
from the event being processed, a context variable its stream sets per event.
An agent that takes events in batches (``take_events``) is left with the last
event of the batch, whatever partition each key belongs to; writing a key to
another partition's changelog would lose it on the next rebalance. So a batched
agent groups its events by partition and writes each group inside
``writing_for(last event of the group)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.types import EventT

from chronox_stream.runtime.faust_shims import current_event


@contextmanager
def writing_for(event: EventT[Any]) -> Iterator[None]:
    with current_event(event):
        yield
