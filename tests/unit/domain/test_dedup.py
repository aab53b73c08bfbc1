"""Dedup before emit: identical bars drop, corrections and enrichments pass, snapshots never
overwrite, poorer bars drop."""

from dataclasses import replace
from datetime import UTC, datetime

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.dedup import admit

BAR = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 2, 15, tzinfo=UTC),
          open=1, high=2, low=0.5, close=1.5, volume=100, vwap=1.2, transactions=4)  # fmt: skip
FLAT = replace(BAR, vwap=None)  # what a flat file knows of the same minute


def test_first_sight_is_emitted_and_a_replay_is_not() -> None:
    state = admit(None, BAR, "api")
    assert state is not None
    assert admit(state, BAR, "api") is None
    assert admit(state, BAR, "flatpack") is None


def test_a_correction_passes_and_becomes_the_new_state() -> None:
    state = admit(None, BAR, "stream")
    corrected = replace(BAR, close=1.55, volume=130)
    newer = admit(state, corrected, "stream")
    assert newer is not None and newer != state
    assert admit(newer, corrected, "stream") is None
    assert admit(newer, BAR, "stream") is not None


def test_a_partial_snapshot_never_overwrites_a_final_bar() -> None:
    state = admit(None, BAR, "api")
    assert admit(state, replace(BAR, close=9.0), "snapshot") is None
    assert admit(state, replace(BAR, close=9.0), "stream") is None


def test_a_final_bar_replaces_a_provisional_one_even_when_equal() -> None:
    state = admit(None, BAR, "snapshot")
    assert admit(state, BAR, "api") is not None


def test_an_enrichment_passes_once_and_a_poorer_bar_never() -> None:
    flat = admit(None, FLAT, "flatpack")
    enriched = admit(flat, BAR, "api")
    assert enriched is not None and enriched.vwap == 1.2 and enriched.transactions == 4
    assert admit(enriched, BAR, "api") is None
    assert admit(enriched, FLAT, "flatpack") is None
    api = admit(None, BAR, "api")
    assert admit(api, FLAT, "flatpack") is None, "a flat-file bar would lose the vwap"
    assert admit(api, replace(BAR, vwap=1.3), "flatpack") is not None, "a vwap correction"
