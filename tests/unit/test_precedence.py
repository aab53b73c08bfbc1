"""Source precedence: corrections pass, provisional bars never overwrite final ones."""

from dataclasses import replace
from datetime import UTC, datetime

from chronox_stream.bars import Bar
from chronox_stream.precedence import collapse, replaces

BAR = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 2, 15, tzinfo=UTC),
          open=1, high=2, low=0.5, close=1.5, volume=100)  # fmt: skip
CORRECTED = replace(BAR, close=1.6, volume=120)


def test_a_correction_from_an_equal_or_higher_source_passes() -> None:
    assert replaces(BAR, "api", CORRECTED, "flatpack")
    assert replaces(BAR, "stream", CORRECTED, "stream")
    assert replaces(BAR, "snapshot", CORRECTED, "api")


def test_a_lower_source_never_overwrites() -> None:
    assert not replaces(BAR, "api", CORRECTED, "stream")
    assert not replaces(BAR, "stream", CORRECTED, "snapshot")


def test_an_identical_bar_only_upgrades_its_source() -> None:
    assert not replaces(BAR, "api", BAR, "flatpack")
    assert not replaces(BAR, "api", BAR, "api")
    assert replaces(BAR, "snapshot", BAR, "stream")


def test_collapse_keeps_one_winner_per_key() -> None:
    other = replace(BAR, ts=datetime(2024, 1, 2, 15, 1, tzinfo=UTC))
    kept = collapse([(BAR, "api"), (CORRECTED, "snapshot"), (other, "stream"), (CORRECTED, "api")])
    assert kept == [(CORRECTED, "api"), (other, "stream")]
