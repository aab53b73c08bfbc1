"""`chronox status` output: one line per symbol, the stream's state and each group's lag."""

from __future__ import annotations

from datetime import UTC, datetime

from chronox_stream.client.status import Report, SymbolStatus, render
from chronox_stream.domain.gaps import Interval
from chronox_stream.domain.registry import RegistryEntry

AT = datetime(2024, 1, 17, 15, 30, tzinfo=UTC)


def test_each_symbol_gets_its_line_and_the_stream_and_lag_are_summed_up() -> None:
    gap = Interval(datetime(2024, 1, 16, 9, tzinfo=UTC), datetime(2024, 1, 16, 12, tzinfo=UTC))
    report = Report(
        symbols=[
            SymbolStatus(
                RegistryEntry(symbol="AAPL", strategy="snapshot+stream", last_stream=AT), [], True
            ),  # fmt: skip
            SymbolStatus(
                RegistryEntry(symbol="MSFT", strategy="api", enabled=False), [gap], False
            ),  # fmt: skip
        ],
        stream={"connected": True, "since": "2024-01-17T15:00:00+00:00", "symbols": ["AAPL"]},
        lag={"agents": 0, "ticks": 12, "sink": -1},
    )
    lines = render(report).splitlines()
    assert lines[0].split()[:2] == ["symbol", "strategy"]
    assert lines[1].split() == ["AAPL", "snapshot+stream", "yes", "idle", "-", "-",
                                "2024-01-17", "15:30:00Z", "none", "yes"]  # fmt: skip
    assert lines[2].split()[-4:] == ["1", "(3.0", "h)", "no"]  # one gap of 3 hours
    assert lines[3] == "stream: connected since 2024-01-17T15:00:00+00:00, 1 symbol(s)"
    assert lines[4] == "consumer lag (messages): agents 0, ticks 12, sink -"


def test_without_a_leader_the_stream_is_not_connected() -> None:
    text = render(Report(symbols=[], stream=None, lag={}))
    assert "(no registered symbols)" in text and "stream: not connected" in text
