"""Bars made by the parsers' fast constructor are the bars of the class's own."""

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chronox_stream.domain.bars import Bar, new_bar

values = st.floats(allow_nan=False)


@given(
    symbol=st.text(max_size=8), tf=st.sampled_from(["1m", "1d"]),
    ts=st.datetimes(timezones=st.just(UTC)), prices=st.tuples(values, values, values, values),
    volume=values, vwap=st.none() | values, transactions=st.none() | st.integers(),
)  # fmt: skip
def test_new_bar_is_the_bar_of_the_keyword_constructor(
    symbol: str, tf: str, ts: datetime, prices: tuple[float, float, float, float],
    volume: float, vwap: float | None, transactions: int | None,
) -> None:  # fmt: skip
    open_, high, low, close = prices
    made = new_bar(symbol, tf, ts, open_, high, low, close, volume, vwap, transactions)
    expected = Bar(symbol=symbol, tf=tf, ts=ts, open=open_, high=high, low=low, close=close,
                   volume=volume, vwap=vwap, transactions=transactions)  # fmt: skip
    assert type(made) is Bar
    assert made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)


def test_a_new_bar_is_frozen_like_any_other() -> None:
    bar = new_bar("AAPL", "1m", datetime(2024, 1, 2, tzinfo=UTC), 1.0, 1.0, 1.0, 1.0, 0.0)
    with pytest.raises(FrozenInstanceError):
        bar.open = 2.0  # type: ignore[misc]
