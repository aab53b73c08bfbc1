"""Which session a snapshot's ``agg`` method reads: the latest one that has begun; how the
flatpack phase groups its days."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import cast

import pytest

from chronox_stream.contracts.work import WorkItem
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.coverage import Coverage
from chronox_stream.domain.gaps import Interval
from chronox_stream.domain.sources import Source
from chronox_stream.domain.trading_dates import NEW_YORK
from chronox_stream.runtime.emit import Emitter
from chronox_stream.settings import Settings
from chronox_stream.sources import phases
from chronox_stream.sources.flatfiles import Kind
from chronox_stream.sources.phases import DayCache, PhaseRunner, latest_session
from chronox_stream.sources.polygon_rest import PolygonRest


@pytest.mark.parametrize(
    ("new_york", "session"),
    [
        # Tuesday 2026-12-01: before the pre-market opens, Monday's session is the latest.
        (datetime(2026, 12, 1, 0, 10), date(2026, 11, 30)),
        (datetime(2026, 12, 1, 3, 59), date(2026, 11, 30)),
        (datetime(2026, 12, 1, 4, 0), date(2026, 12, 1)),
        (datetime(2026, 12, 1, 22, 30), date(2026, 12, 1)),
        # Saturday, and the Monday morning after a weekend: Friday's.
        (datetime(2026, 12, 5, 12, 0), date(2026, 12, 4)),
        (datetime(2026, 12, 7, 1, 0), date(2026, 12, 4)),
        # Thanksgiving (closed): the Wednesday before it.
        (datetime(2026, 11, 26, 12, 0), date(2026, 11, 25)),
    ],
)
def test_latest_session_is_the_last_one_whose_pre_market_opened(
    new_york: datetime, session: date
) -> None:
    assert latest_session(new_york.replace(tzinfo=NEW_YORK)) == session


class Store:
    """Day files of ``bars_per_day`` minute bars of AAPL from 14:30 UTC, for any day."""

    def __init__(self, bars_per_day: int) -> None:
        self.bars_per_day = bars_per_day
        self.fetched: list[date] = []

    async def fetch(self, kind: Kind, day: date) -> bytes | None:
        self.fetched.append(day)
        start = int(datetime.combine(day, time(14, 30), tzinfo=UTC).timestamp()) * 10**9
        rows = "".join(f"AAPL,100,1.5,1.5,2,1,{start + m * 60 * 10**9},3\n"
                       for m in range(self.bars_per_day))  # fmt: skip
        return ("ticker,volume,open,close,high,low,window_start,transactions\n" + rows).encode()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Log:
    """What the flatpack phase emitted and checkpointed, in order."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, object]] = []
        self.count = 0

    async def emit(self, bars: Sequence[Bar], source: Source) -> int:
        self.entries.append(("emit", sorted({b.ts.date() for b in bars})))
        self.count += len(bars)
        return len(bars)

    def get(self, symbol: str, tf: str) -> Coverage:
        return Coverage()

    def mark_fetched(self, symbol: str, tf: str, window: Interval) -> Coverage:
        self.entries.append(("mark", window.start.date()))
        return Coverage()


DAYS = [date(2024, 1, d) for d in (8, 9, 10, 11, 12)]
ITEM = WorkItem(request_id="r", symbol="AAPL", timeframe="1m", phases=("flatpack",),
                start=datetime(2024, 1, 8, tzinfo=UTC), end=datetime(2024, 1, 13, tzinfo=UTC),
                snapshot_method="snapshot", publish_mode="kafka-first", throttle_ms=0,
                dry_run=False)  # fmt: skip


async def test_the_flatpack_phase_emits_days_together_and_checkpoints_them_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(phases, "FLATPACK_BARS", 250)
    log = Log()
    store = Store(100)
    cache = DayCache(store)
    for day in DAYS:  # every file in hand: the days go out by FLATPACK_BARS
        await cache.get("minute_aggs_v1", day)
    runner = PhaseRunner(settings=Settings(), rest=cast(PolygonRest, None),
                         days=cache, coverage=log)  # fmt: skip
    assert await runner.run("flatpack", ITEM, cast(Emitter, log), datetime.now(UTC)) == 500
    assert log.entries == [("emit", DAYS[:3]), *(("mark", d) for d in DAYS[:3]),
                           ("emit", DAYS[3:]), *(("mark", d) for d in DAYS[3:])]  # fmt: skip
    assert sorted(store.fetched) == DAYS, "each file fetched once"


class SlowStore(Store):
    """A store whose files after the first arrive only when ``arrive`` is set."""

    def __init__(self, bars_per_day: int) -> None:
        super().__init__(bars_per_day)
        self.arrive = asyncio.Event()

    async def fetch(self, kind: Kind, day: date) -> bytes | None:
        if day != DAYS[0]:
            await self.arrive.wait()
        return await super().fetch(kind, day)


async def test_the_flatpack_phase_emits_the_days_in_hand_before_waiting_for_a_file() -> None:
    log = Log()
    store = SlowStore(100)
    runner = PhaseRunner(settings=Settings(), rest=cast(PolygonRest, None),
                         days=DayCache(store), coverage=log)  # fmt: skip
    run = asyncio.create_task(runner.run("flatpack", ITEM, cast(Emitter, log), datetime.now(UTC)))
    async with asyncio.timeout(5):
        while len(log.entries) < 2:
            await asyncio.sleep(0.01)
    assert log.entries == [("emit", DAYS[:1]), ("mark", DAYS[0])], "day 1 out before day 2 came"
    store.arrive.set()
    assert await run == 500
    assert sorted(store.fetched) == DAYS, "each file fetched once, prefetched or not"


class FailingStore(Store):
    async def fetch(self, kind: Kind, day: date) -> bytes | None:
        if day.day == 9:
            raise ConnectionError("endpoint unreachable")
        return await super().fetch(kind, day)


async def test_a_prefetched_file_that_failed_fails_the_get_of_its_day() -> None:
    store = FailingStore(10)
    days = DayCache(store)
    days.prefetch("minute_aggs_v1", [date(2024, 1, 8), date(2024, 1, 9), date(2024, 1, 10)])
    parsed = await days.get("minute_aggs_v1", date(2024, 1, 8))
    assert parsed is not None and len(parsed.bars()) == 10
    with pytest.raises(ConnectionError, match="unreachable"):
        await days.get("minute_aggs_v1", date(2024, 1, 9))
    await days.close()  # the one still being fetched is let go
    assert sorted(store.fetched) == [date(2024, 1, 8), date(2024, 1, 10)]
