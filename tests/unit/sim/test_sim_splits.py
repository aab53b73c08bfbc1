"""The simulated market's splits: unadjusted trades, adjusted aggregates, the reference listing."""

from __future__ import annotations

from datetime import date

import pytest
from click import UsageError

from chronox_stream.sim.adjusted import adjusted_json, scaled_json
from chronox_stream.sim.cli import _market_splits
from chronox_stream.sim.corporate import Split, parse_split, price_factor
from chronox_stream.sim.history import day_bar, minute_bars
from chronox_stream.sim.market import Market
from chronox_stream.sim.pages import AggQuery, aggregate_page
from chronox_stream.sim.reference import BadQuery, list_splits
from chronox_stream.sim.sessions import ny_midnight_ns

SPLIT = Split("NVDA", date(2024, 1, 12), 1, 4)
PLAIN, SPLIT_MARKET = Market(7), Market(7, (SPLIT,))
BEFORE, ON = date(2024, 1, 11), date(2024, 1, 12)
NOW = ny_midnight_ns(date(2024, 1, 18))


def test_parse_split_reads_symbol_date_and_ratio() -> None:
    assert parse_split("nvda:2024-01-12:1:4") == SPLIT
    assert parse_split("XYZ:2024-03-01:3:2").ratio == pytest.approx(2 / 3)
    bad_specs = ("NVDA:2024-01-12:1", "NVDA:12/01/2024:1:4", "NVDA:2024-01-12:0:4",
                 "NVDA:2024-01-12:1:nan", "NVDA:2024-01-12:1:-4", "nv da:2024-01-12:1:4")
    for bad in bad_specs:
        with pytest.raises(ValueError):
            parse_split(bad)


def test_trades_before_the_execution_date_carry_the_pre_split_price() -> None:
    before = SPLIT_MARKET.day("NVDA", BEFORE)
    plain = PLAIN.day("NVDA", BEFORE)
    assert [t.cents for t in before] == [4 * t.cents for t in plain]
    assert [(t.sip_ns, t.size) for t in before] == [(t.sip_ns, t.size) for t in plain]
    assert SPLIT_MARKET.day("NVDA", ON) == PLAIN.day("NVDA", ON)
    assert SPLIT_MARKET.day("AAPL", BEFORE) == PLAIN.day("AAPL", BEFORE)
    minute = minute_bars(SPLIT_MARKET, "NVDA", BEFORE)[100]
    assert SPLIT_MARKET.minute("NVDA", minute.start_ns) == tuple(
        t for t in before if minute.start_ns <= t.sip_ns < minute.end_ns
    )


def test_the_unadjusted_price_jumps_by_the_ratio_at_the_split() -> None:
    last_close = day_bar(SPLIT_MARKET, "NVDA", BEFORE)
    first = day_bar(SPLIT_MARKET, "NVDA", ON)
    assert last_close is not None and first is not None
    assert 3.5 < last_close.close / first.open < 4.5


def test_the_factor_multiplies_later_executed_splits_only() -> None:
    two = (SPLIT, Split("NVDA", date(2024, 1, 17), 2, 3))
    assert price_factor(two, "NVDA", date(2024, 1, 10)) == 4 * 1.5
    assert price_factor(two, "NVDA", ON) == 1.5
    assert price_factor(two, "NVDA", date(2024, 1, 17)) == 1.0
    assert price_factor(two, "AAPL", date(2024, 1, 10)) == 1.0
    assert price_factor(two, "NVDA", date(2024, 1, 10), executed_by=ON) == 4.0


def test_adjusted_bars_are_the_unadjusted_ones_scaled() -> None:
    bar = minute_bars(SPLIT_MARKET, "NVDA", BEFORE)[50]
    adjusted = adjusted_json(SPLIT_MARKET, "NVDA", "minute", bar, NOW)
    assert adjusted == {
        "v": bar.volume * 4, "vw": bar.vwap / 4, "o": bar.open / 4, "c": bar.close / 4,
        "h": bar.high / 4, "l": bar.low / 4, "t": bar.start_ms, "n": bar.transactions,
    }  # fmt: skip
    after = minute_bars(SPLIT_MARKET, "NVDA", ON)[50]
    assert adjusted_json(SPLIT_MARKET, "NVDA", "minute", after, NOW) == scaled_json(after, 1.0)
    before_known = ny_midnight_ns(date(2024, 1, 11)) + 1
    assert adjusted_json(SPLIT_MARKET, "NVDA", "minute", bar, before_known)["o"] == bar.open


def test_a_week_across_the_split_merges_adjusted_days() -> None:
    query = AggQuery("NVDA", 1, "week", ny_midnight_ns(date(2024, 1, 7)),
                     ny_midnight_ns(date(2024, 1, 13)) - 1, 5000, False)  # fmt: skip
    (week,) = aggregate_page(SPLIT_MARKET, query, NOW, late_trades=True).bars
    adjusted = adjusted_json(SPLIT_MARKET, "NVDA", "week", week, NOW)
    days = [day_bar(SPLIT_MARKET, "NVDA", date(2024, 1, d)) for d in range(8, 13)]
    factors = [4, 4, 4, 4, 1]
    scaled = [scaled_json(d, f) for d, f in zip(days, factors, strict=True) if d is not None]
    assert adjusted["o"] == scaled[0]["o"] and adjusted["c"] == scaled[-1]["c"]
    assert adjusted["h"] == max(s["h"] for s in scaled)
    assert adjusted["l"] == min(s["l"] for s in scaled)
    assert adjusted["v"] == sum(s["v"] for s in scaled)
    assert adjusted["n"] == week.transactions
    assert adjusted["vw"] == pytest.approx(
        sum(s["vw"] * s["v"] for s in scaled) / adjusted["v"], abs=1e-4
    )


SPLITS = (
    SPLIT,
    Split("AAPL", date(2020, 8, 31), 1, 4),
    Split("TSLA", date(2022, 8, 25), 1, 3),
    Split("GE", date(2021, 8, 2), 8, 1),
)


def _tickers(params: dict[str, str]) -> list[str]:
    return [r["ticker"] for r in list_splits(SPLITS, params).results]


def test_the_listing_filters_sorts_and_pages() -> None:
    assert _tickers({}) == ["AAPL", "GE", "TSLA", "NVDA"]
    assert _tickers({"order": "desc"}) == ["NVDA", "TSLA", "GE", "AAPL"]
    assert _tickers({"sort": "ticker"}) == ["AAPL", "GE", "NVDA", "TSLA"]
    assert _tickers({"ticker": "NVDA"}) == ["NVDA"]
    assert _tickers({"ticker.gte": "NVDA"}) == ["TSLA", "NVDA"]
    assert _tickers({"execution_date.gt": "2021-08-02"}) == ["TSLA", "NVDA"]
    assert _tickers({"execution_date.lte": "2021-08-02", "ticker.lt": "B"}) == ["AAPL"]
    assert _tickers({"reverse_split": "true"}) == ["GE"]
    first = list_splits(SPLITS, {"limit": "3", "apiKey": "secret"})
    assert [r["ticker"] for r in first.results] == ["AAPL", "GE", "TSLA"]
    assert first.next_params == {"limit": "3", "offset": "3"}
    last = list_splits(SPLITS, first.next_params)
    assert [r["ticker"] for r in last.results] == ["NVDA"] and last.next_params is None
    (nvda,) = list_splits(SPLITS, {"ticker": "NVDA"}).results
    assert nvda["execution_date"] == "2024-01-12"
    assert (nvda["split_from"], nvda["split_to"]) == (1, 4)
    assert nvda["id"].startswith("E") and len(nvda["id"]) == 65


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "1001"}, {"order": "up"}, {"sort": "ratio"},
     {"execution_date": "2024-1-12"}, {"reverse_split": "yes"}, {"offset": "x"}],
)  # fmt: skip
def test_the_listing_refuses_bad_queries(params: dict[str, str]) -> None:
    with pytest.raises(BadQuery):
        list_splits(SPLITS, params)


def test_the_cli_default_market_has_the_seeded_split_unless_told_otherwise() -> None:
    assert _market_splits((), False) == (SPLIT,)
    assert _market_splits((), True) == ()
    other = (parse_split("AAPL:2020-08-31:1:4"),)
    assert _market_splits(other, False) == other
    with pytest.raises(UsageError):
        _market_splits(other, True)
