"""Bar window maths (pure): where the bar containing an instant starts, per timeframe.

Minute multiples and hours align to the epoch in UTC (New York's offset is a
whole number of hours, so they align there too); a day bar starts at midnight
New York time, as Polygon's day aggregates do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chronox_stream.domain.market_calendar import NEW_YORK
from chronox_stream.domain.timeframes import Timeframe


def window_start(ts: datetime, timeframe: Timeframe) -> datetime:
    """Start (UTC) of the ``timeframe`` bar that contains ``ts``."""
    if timeframe.timespan == "day":
        local = ts.astimezone(NEW_YORK)
        midnight = datetime(local.year, local.month, local.day, tzinfo=NEW_YORK)
        return midnight.astimezone(UTC)
    seconds = int(ts.timestamp())
    return datetime.fromtimestamp(seconds - seconds % timeframe.seconds, tz=UTC)


def window_end(start: datetime, timeframe: Timeframe) -> datetime:
    """End (exclusive, UTC) of the window starting at ``start``; days follow DST."""
    if timeframe.timespan == "day":
        local = start.astimezone(NEW_YORK)
        next_day = (local + timedelta(days=1)).date()
        return datetime(next_day.year, next_day.month, next_day.day, tzinfo=NEW_YORK).astimezone(
            UTC
        )
    return start + timedelta(seconds=timeframe.seconds)
