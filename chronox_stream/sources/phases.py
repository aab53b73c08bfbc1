"""Running the fetching phases of one work item: flatpack, api, snapshot, and any declared.

Each phase runs the runner declared with its source (``sources.registry``); the built-in
ones are the methods below, bound at the end of this module.

The shell around the pure planning in ``gaps``: it reads coverage from the
backfill state table, fetches, emits through an ``Emitter``, and checkpoints
each fetched window so a restarted worker resumes where the dead one stopped.
A dry run checkpoints into an in-memory overlay instead (``for_item``), so its
api phase skips what its flatpack phase covered, as a real run's does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from chronox_stream.contracts.work import WorkItem
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.coverage import Coverage
from chronox_stream.domain.dry_run import DryRunCoverage
from chronox_stream.domain.gaps import Interval, api_windows, subtract
from chronox_stream.domain.market_calendar import extended_hours, trading_days
from chronox_stream.domain.resample import resample
from chronox_stream.domain.sources import Phase, spec_of
from chronox_stream.domain.timeframes import TIMEFRAMES, Timeframe
from chronox_stream.domain.trading_dates import trading_date
from chronox_stream.domain.windows import window_start
from chronox_stream.runtime.emit import Emitter
from chronox_stream.settings import Settings
from chronox_stream.sources.flatfiles import FlatFileStore, Kind
from chronox_stream.sources.polygon_rest import PolygonRest, collect
from chronox_stream.sources.registry import declare_source, runner_of

if TYPE_CHECKING:
    from chronox_stream.sources.flatfile_csv import ParsedDay

log = logging.getLogger(__name__)

#: The flatpack phase emits (and checkpoints) days together once they hold this many bars:
#: about two weeks of minute bars, a few megabytes, one wait for the acks.
FLATPACK_BARS = 10_000
#: The day files the flatpack phase fetches ahead of the one it reads (a market-wide
#: minute file is some 20 MB compressed).
PREFETCH_DAYS = 2


def latest_session(now: datetime) -> date:
    """The latest session in New York that has begun by ``now`` (its pre-market opened):
    today's from 04:00, else the one before it (nights, weekends, holidays)."""
    today = trading_date(now)
    begun = [d for d in trading_days(today - timedelta(days=10), today)
             if extended_hours(d)[0] <= now]  # fmt: skip
    return begun[-1]


def planned_api_windows(
    settings: Settings, coverage: Coverage, timeframe: Timeframe, *, start: datetime | None,
    end: datetime, now: datetime,
) -> list[Interval]:  # fmt: skip
    """The windows an api phase fetches for ``[start, end]`` now: the gap rule with the
    settings' lookback, threshold and window size, on the exchange's calendar."""
    return api_windows(
        requested_start=start,
        end=min(end, window_start(now, timeframe)),
        now=now,
        covered=coverage.covered,
        last_backfill=coverage.last_backfill,
        lookback=timedelta(days=settings.backfill_lookback_days),
        threshold=timedelta(days=settings.gap_threshold_days),
        window=timedelta(days=settings.gap_window_days),
        trading_days=trading_days,
        trading_hours=extended_hours,
    )


class CoverageTable(Protocol):
    def get(self, symbol: str, tf: str) -> Coverage: ...

    def mark_fetched(self, symbol: str, tf: str, window: Interval) -> Coverage: ...


class DayCache:
    """The last few parsed day files (all symbols), shared by the symbols of one worker.

    :meth:`prefetch` starts fetching the files a phase reads next while it works on the
    current one (the fetch is I/O, and the endpoint another process): a file is read from
    the store once whether prefetched or not, and a failed prefetch fails the ``get`` of
    its day, as a fetch there would.
    """

    def __init__(self, store: FlatFileStore, size: int = 10) -> None:
        self._store = store
        self._size = size
        self._days: OrderedDict[tuple[Kind, date], ParsedDay | None] = OrderedDict()
        self._fetching: dict[tuple[Kind, date], asyncio.Task[bytes | None | Exception]] = {}

    def prefetch(self, kind: Kind, days: Iterable[date]) -> None:
        """Start fetching ``days`` not held nor being fetched yet."""
        for day in days:
            key = (kind, day)
            if key not in self._days and key not in self._fetching:
                self._fetching[key] = asyncio.create_task(self._fetch(kind, day))

    def ready(self, kind: Kind, day: date) -> bool:
        """Whether :meth:`get` of ``day`` would not wait for the store."""
        key = (kind, day)
        fetching = self._fetching.get(key)
        return key in self._days or (fetching is not None and fetching.done())

    async def _fetch(self, kind: Kind, day: date) -> bytes | None | Exception:
        try:
            return await self._store.fetch(kind, day)
        except Exception as exc:  # handed to the get of this day
            return exc

    async def get(self, kind: Kind, day: date) -> ParsedDay | None:
        from chronox_stream.sources.flatfile_csv import parse_aggregates  # pyarrow: ~0.3 s

        key = (kind, day)
        if key not in self._days:
            fetching = self._fetching.pop(key, None)
            if fetching is None:
                data = await self._store.fetch(kind, day)
            else:
                fetched = await fetching
                if isinstance(fetched, Exception):
                    raise fetched
                data = fetched
            self._days[key] = parse_aggregates(data, day=day, symbols=None) if data else None
            while len(self._days) > self._size:
                self._days.popitem(last=False)
        self._days.move_to_end(key)
        return self._days[key]

    async def open(self) -> None:
        await self._store.open()

    async def close(self) -> None:
        for fetching in self._fetching.values():
            fetching.cancel()
        await asyncio.gather(*self._fetching.values(), return_exceptions=True)
        self._fetching.clear()
        await self._store.close()


@dataclass
class PhaseRunner:
    """Runs phases for work items; one per worker, sharing clients and caches."""

    settings: Settings
    rest: PolygonRest
    days: DayCache
    coverage: CoverageTable

    def for_item(self, item: WorkItem) -> PhaseRunner:
        """The runner for the phases of ``item``: a dry run's checkpoints stay in memory."""
        if item.dry_run:
            return replace(self, coverage=DryRunCoverage(self.coverage))
        return self

    async def run(self, phase: Phase, item: WorkItem, emitter: Emitter, now: datetime) -> int:
        """Run one fetching phase (the runner declared with its source); return the number
        of bars it emitted."""
        before = emitter.count
        await runner_of(phase)(self, item, emitter, now)
        return emitter.count - before

    async def flatpack(self, item: WorkItem, emitter: Emitter, now: datetime) -> None:
        """The day files of ``[start, end]`` not covered yet (``now`` is not needed: a day
        file exists or not), emitted a few days at a time (``FLATPACK_BARS``, or fewer when
        the next day's file is not fetched yet): each emit waits once for Kafka's acks, then
        those days are checkpointed."""
        tf = TIMEFRAMES[item.timeframe]
        start = item.start or item.end - timedelta(days=self.settings.backfill_lookback_days)
        kind: Kind = "day_aggs_v1" if tf.timespan == "day" else "minute_aggs_v1"
        covered = self.coverage.get(item.symbol, tf.name).covered
        bars: list[Bar] = []
        sessions: list[Interval] = []
        wanted = []
        for day in trading_days(trading_date(start), trading_date(item.end)):
            opens, closes = extended_hours(day)
            session = Interval(max(opens, start), min(closes, item.end))
            if not session.empty and subtract(session, covered):
                wanted.append((day, session))
        for i, (day, session) in enumerate(wanted):
            self.days.prefetch(kind, (later for later, _ in wanted[i + 1 : i + 1 + PREFETCH_DAYS]))
            if sessions and not self.days.ready(kind, day):
                # The days in hand go out while this one's file is still on its way: the
                # sinks start on them instead of waiting for every file of the item.
                await self._emit_days(item, emitter, bars, sessions)
                bars, sessions = [], []
            parsed = await self.days.get(kind, day)
            if parsed is None:
                log.warning("flat file of %s missing: left to the api phase", day,
                            extra={"symbol": item.symbol, "phase": "flatpack"})  # fmt: skip
                continue
            if kind == "day_aggs_v1":
                bars += parsed.bars_of(item.symbol, "1d")
            else:
                minutes = parsed.bars_of(item.symbol, "1m")
                bars += resample([b for b in minutes if session.start <= b.ts < session.end], tf)
            sessions.append(session)
            if len(bars) >= FLATPACK_BARS:
                await self._emit_days(item, emitter, bars, sessions)
                bars, sessions = [], []
        if sessions:
            await self._emit_days(item, emitter, bars, sessions)

    async def _emit_days(
        self, item: WorkItem, emitter: Emitter, bars: list[Bar], sessions: list[Interval]
    ) -> None:
        await emitter.emit(bars, "flatpack")
        for session in sessions:
            self.coverage.mark_fetched(item.symbol, TIMEFRAMES[item.timeframe].name, session)

    async def api(self, item: WorkItem, emitter: Emitter, now: datetime) -> None:
        """REST aggregates for the gaps, one checkpointed window at a time."""
        tf = TIMEFRAMES[item.timeframe]
        coverage = self.coverage.get(item.symbol, tf.name)
        if item.refetch:  # a refill: what is covered may have changed at the source since
            coverage = replace(coverage, covered=())
        for window in planned_api_windows(
            self.settings, coverage, tf, start=item.start, end=item.end, now=now
        ):
            last = window.end - timedelta(milliseconds=1)
            bars = await collect(self.rest.aggregates(item.symbol, tf, window.start, last))
            await emitter.emit(bars, "api")
            self.coverage.mark_fetched(item.symbol, tf.name, window)

    async def snapshot(self, item: WorkItem, emitter: Emitter, now: datetime) -> None:
        """The current state by the item's snapshot method."""
        if item.snapshot_method == "snapshot":
            snap = await self.rest.snapshot(item.symbol)
            bars = [b for b in (snap.minute, snap.day) if b is not None]
        elif item.snapshot_method == "rest":
            prev = await self.rest.previous_close(item.symbol)
            bars = [prev] if prev else []
        else:
            tf = TIMEFRAMES[item.timeframe]
            session_start, _ = extended_hours(latest_session(now))
            bars = await collect(self.rest.aggregates(item.symbol, tf, session_start, now))
        # In-progress bars are emitted too: their source rank keeps them provisional.
        await emitter.emit(bars, "snapshot")


for _name, _runner in (("flatpack", PhaseRunner.flatpack), ("api", PhaseRunner.api),
                       ("snapshot", PhaseRunner.snapshot)):  # fmt: skip
    declare_source(spec_of(_name), _runner)
