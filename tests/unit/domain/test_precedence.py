"""The precedence rule: same, enrichment, poorer or correction, then the sources' ranks."""

from dataclasses import replace
from datetime import UTC, datetime

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.precedence import Merge, collapse, compare, merge

# A flat-file bar: OHLCV and transactions, no vwap. The api's bar of the same minute: the same
# values plus vwap.
FLAT = Bar(symbol="AAPL", tf="1m", ts=datetime(2024, 1, 2, 15, tzinfo=UTC),
           open=1, high=2, low=0.5, close=1.5, volume=100, transactions=7)  # fmt: skip
API = replace(FLAT, vwap=1.25)
CORRECTED = replace(API, close=1.6, volume=120)


def test_relations() -> None:
    assert compare(FLAT, FLAT) == "same"
    assert compare(FLAT, replace(FLAT, volume=100.0)) == "same"  # an int volume is its float
    assert compare(FLAT, API) == "enrichment"
    assert compare(API, FLAT) == "poorer"
    assert compare(API, replace(API, vwap=1.26)) == "correction"  # contradicts a field it has
    assert compare(API, replace(API, transactions=8)) == "correction"
    assert compare(FLAT, CORRECTED) == "correction"
    # adds vwap, lacks transactions, contradicts nothing: still an enrichment
    assert compare(FLAT, replace(API, transactions=None)) == "enrichment"


def test_a_correction_from_an_equal_or_higher_source_replaces_the_bar() -> None:
    assert merge(API, "api", CORRECTED, "flatpack") == Merge(CORRECTED, "flatpack", revised=True)
    assert merge(API, "stream", CORRECTED, "stream") == Merge(CORRECTED, "stream", revised=True)
    assert merge(API, "snapshot", CORRECTED, "api") == Merge(CORRECTED, "api", revised=True)


def test_a_lower_source_never_changes_the_bar() -> None:
    assert merge(API, "api", CORRECTED, "stream") is None
    assert merge(FLAT, "flatpack", API, "snapshot") is None  # not even an enrichment


def test_an_identical_bar_only_upgrades_its_source() -> None:
    assert merge(API, "api", API, "flatpack") is None
    assert merge(API, "api", API, "api") is None
    assert merge(API, "snapshot", API, "stream") == Merge(API, "stream", revised=False)


def test_an_enrichment_fills_the_missing_fields_without_a_revision() -> None:
    assert merge(FLAT, "flatpack", API, "api") == Merge(API, "flatpack", revised=False)
    assert merge(FLAT, "stream", API, "api") == Merge(API, "api", revised=False)
    vwap_only = replace(FLAT, transactions=None, vwap=1.25)
    assert merge(vwap_only, "api", FLAT, "flatpack") == Merge(API, "api", revised=False)


def test_a_poorer_bar_never_removes_a_field() -> None:
    assert merge(API, "api", FLAT, "flatpack") is None
    assert merge(API, "stream", FLAT, "flatpack") == Merge(API, "flatpack", revised=False)


def test_collapse_keeps_one_merged_bar_per_key() -> None:
    other = replace(FLAT, ts=datetime(2024, 1, 2, 15, 1, tzinfo=UTC))
    kept = collapse([(FLAT, "flatpack"), (API, "api"), (CORRECTED, "snapshot"), (other, "stream")])
    assert kept == [(API, "flatpack"), (other, "stream")]
    assert collapse([(API, "api"), (FLAT, "flatpack")]) == [(API, "api")]
