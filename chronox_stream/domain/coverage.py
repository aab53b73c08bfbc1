"""What was fetched for one (symbol, timeframe): covered ranges and the last backfill time.

Kept as merged intervals, so the value stays a handful of pairs however many
windows were fetched; reassigned whole after every window (a checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson

from chronox_stream.domain.bars import ms_to_utc
from chronox_stream.domain.gaps import Interval, merge


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Coverage:
    covered: tuple[Interval, ...] = field(default=())
    last_backfill: datetime | None = None

    def with_fetched(self, window: Interval) -> Coverage:
        """Coverage after ``window`` was fetched completely; ``last_backfill`` is the data's end."""
        last = window.end if self.last_backfill is None else max(self.last_backfill, window.end)
        return Coverage(tuple(merge([*self.covered, window])), last)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "covered": [[_ms(i.start), _ms(i.end)] for i in self.covered],
                "last_backfill": _ms(self.last_backfill) if self.last_backfill else None,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Coverage:
        doc = orjson.loads(raw)
        covered = tuple(Interval(ms_to_utc(a), ms_to_utc(b)) for a, b in doc["covered"])
        last = doc["last_backfill"]
        return cls(covered, ms_to_utc(last) if last is not None else None)
