"""Which session a snapshot's ``agg`` method reads: the latest one that has begun."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from chronox_stream.domain.trading_dates import NEW_YORK
from chronox_stream.sources.phases import latest_session


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
