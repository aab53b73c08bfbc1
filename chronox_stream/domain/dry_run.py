"""What a dry run would have recorded, kept in memory for its work item and written nowhere.

A dry run fetches and judges bars exactly as a real run does, so it reports what a real
run of the same request on the same state would emit; it differs only in its effects.
These overlays give its phases the state a real run's earlier phases would have left
(the dedup entries of the bars it would have emitted, the windows it would have
checkpointed) on top of the tables, which they only read: the api phase then skips what
the flatpack phase covered, and nothing is fetched or counted twice.
"""

from __future__ import annotations

from typing import Protocol

from chronox_stream.domain.coverage import Coverage
from chronox_stream.domain.dedup import Bucket
from chronox_stream.domain.gaps import Interval


class BucketStore(Protocol):
    def current(self, keys: set[str]) -> dict[str, Bucket]: ...


class DryRunDedup:
    """The dedup state of one dry run: the table's buckets overlaid with what it recorded."""

    def __init__(self, base: BucketStore) -> None:
        self._base = base
        self._recorded: dict[str, Bucket] = {}

    def current(self, keys: set[str]) -> dict[str, Bucket]:
        mine = {key: self._recorded[key] for key in keys if key in self._recorded}
        return {**self._base.current(keys - mine.keys()), **mine}

    def record(self, buckets: dict[str, Bucket]) -> None:
        self._recorded.update(buckets)

    def purge(self) -> int:
        """A dry run deletes nothing."""
        return 0


class CoverageStore(Protocol):
    def get(self, symbol: str, tf: str) -> Coverage: ...


class DryRunCoverage:
    """The coverage of one dry run: the table's, plus the windows it would have checkpointed."""

    def __init__(self, base: CoverageStore) -> None:
        self._base = base
        self._fetched: dict[tuple[str, str], Coverage] = {}

    def get(self, symbol: str, tf: str) -> Coverage:
        fetched = self._fetched.get((symbol, tf))
        return fetched if fetched is not None else self._base.get(symbol, tf)

    def mark_fetched(self, symbol: str, tf: str, window: Interval) -> Coverage:
        coverage = self.get(symbol, tf).with_fetched(window)
        self._fetched[(symbol, tf)] = coverage
        return coverage
