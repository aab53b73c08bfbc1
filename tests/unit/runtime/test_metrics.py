"""The worker's metrics: names and labels, per-batch recording, lag, Faust's counts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import faust
import pytest
from prometheus_client import CollectorRegistry

from chronox_stream.domain.bars import Bar
from chronox_stream.runtime import metrics


@pytest.fixture(scope="module")
def app() -> faust.App:
    return faust.App("metrics-unit", broker="kafka://127.0.0.1:1", autodiscover=False)


@pytest.fixture
def registry(app: faust.App) -> Iterator[CollectorRegistry]:
    yield metrics.worker_registry(app)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def bar(tf: str, minute: int) -> Bar:
    return Bar(symbol="AAPL", tf=tf, ts=datetime(2024, 1, 16, 15, minute, tzinfo=UTC),
               open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0)  # fmt: skip


def test_every_name_starts_with_chronox_and_no_label_is_a_symbol(
    registry: CollectorRegistry,
) -> None:
    families = list(registry.collect())
    assert families
    for family in families:
        assert family.name.startswith("chronox_"), family.name
    for metric in metrics.METRICS:
        assert "symbol" not in metric._labelnames


def test_an_emit_counts_its_bars_per_timeframe_and_its_dedup_drops(
    registry: CollectorRegistry,
) -> None:
    def emitted(tf: str) -> float:
        return value(registry, "chronox_bars_emitted_total", source="api", timeframe=tf)

    before_1m, before_5m = emitted("1m"), emitted("5m")
    dropped = value(registry, "chronox_dedup_dropped_total", source="api")
    metrics.emitted("api", [[bar("1m", 0), bar("1m", 1)], [bar("5m", 0)]], 4)
    assert emitted("1m") - before_1m == 2
    assert emitted("5m") - before_5m == 1
    assert value(registry, "chronox_dedup_dropped_total", source="api") - dropped == 4


def test_tick_bar_latency_is_from_the_newest_close_of_the_batch(
    registry: CollectorRegistry,
) -> None:
    newest = bar("5m", 5)  # closes at 15:10
    close = newest.ts.timestamp() + 300
    before = value(registry, "chronox_tick_bar_latency_seconds_sum")
    count = value(registry, "chronox_tick_bar_latency_seconds_count")
    metrics.tick_bars_sent([bar("1m", 0), newest, bar("1m", 8)], now=lambda: close + 1.5)
    assert value(registry, "chronox_tick_bar_latency_seconds_sum") - before == pytest.approx(1.5)
    assert value(registry, "chronox_tick_bar_latency_seconds_count") - count == 1
    metrics.tick_bars_sent([])
    assert value(registry, "chronox_tick_bar_latency_seconds_count") - count == 1


def test_a_sink_write_is_one_observation_of_size_time_and_latency(
    registry: CollectorRegistry,
) -> None:
    def seen(name: str) -> float:
        return value(registry, name, sink="postgres")

    size, took = seen("chronox_sink_batch_size_sum"), seen("chronox_sink_write_seconds_sum")
    landed = seen("chronox_bar_sink_latency_seconds_sum")
    metrics.sink_written("postgres", 250, 0.25, 1_000_000, now=lambda: 1_002.0)
    assert seen("chronox_sink_batch_size_sum") - size == 250
    assert seen("chronox_sink_write_seconds_sum") - took == 0.25
    assert seen("chronox_bar_sink_latency_seconds_sum") - landed == pytest.approx(2.0)


def test_dead_letters_are_counted_by_reason_and_source_topic(registry: CollectorRegistry) -> None:
    def seen(topic: str) -> float:
        return value(registry, "chronox_dead_letters_total", reason="invalid_json", topic=topic)

    control, elsewhere = seen("p.control"), seen("none")
    metrics.dead_lettered("invalid_json", "p.control")
    metrics.dead_lettered("invalid_json", None)
    assert (seen("p.control") - control, seen("none") - elsewhere) == (1, 1)


@pytest.mark.parametrize(("status", "label"),
                         [(200, "200"), (429, "429"), (503, "503"), (418, "4xx"), (301, "3xx"),
                          (599, "5xx"), (None, "error")])  # fmt: skip
def test_a_rest_status_is_its_code_when_known_else_its_class(status: int | None,
                                                             label: str) -> None:  # fmt: skip
    assert metrics.status_label(status) == label


def test_lag_sums_the_partitions_whose_end_and_position_are_known() -> None:
    ends = {"a": 10, "b": 7, "c": None, "d": 5}
    positions = {"a": 4, "b": 9, "c": 1}  # b: a position past a stale end counts 0
    assert metrics.lag(ends, positions) == 6
    assert metrics.lag({"c": None}, positions) is None
    assert metrics.lag({}, {}) is None


def test_faust_stands_after_its_last_read_else_at_its_commit() -> None:
    read, committed = {"a": 9, "b": 3}, {"a": 2, "c": 5, "x": 1}
    assert metrics.faust_positions(read, committed, ["a", "c", "d"]) == {"a": 10, "c": 5}


def test_each_running_group_reports_its_lag_until_it_stops(registry: CollectorRegistry) -> None:
    def boom() -> int | None:
        raise RuntimeError("between two assignments")

    with metrics.lag_probe("unit-a", lambda: 12), metrics.lag_probe("unit-b", boom), \
            metrics.lag_probe("unit-c", lambda: None):  # fmt: skip
        assert value(registry, "chronox_consumer_lag", group="unit-a") == 12
        assert registry.get_sample_value("chronox_consumer_lag", {"group": "unit-b"}) is None
        assert registry.get_sample_value("chronox_consumer_lag", {"group": "unit-c"}) is None
    assert registry.get_sample_value("chronox_consumer_lag", {"group": "unit-a"}) is None


def test_faust_counts_come_from_its_monitor(app: faust.App, registry: CollectorRegistry) -> None:
    app.monitor.events_total = 41
    app.monitor.messages_received_total = 43
    assert value(registry, "chronox_faust_events_total") == 41
    assert value(registry, "chronox_faust_messages_received_total") == 43


def test_the_trade_stream_state_is_a_gauge(registry: CollectorRegistry) -> None:
    metrics.ws_connected(True)
    assert value(registry, "chronox_ws_connected") == 1
    metrics.ws_connected(False)
    assert value(registry, "chronox_ws_connected") == 0


def test_the_readme_lists_every_metric(registry: CollectorRegistry) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("### Metrics and dashboards", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(chronox_[a-z_]+)`", section))
    for family in registry.collect():
        if family.name.startswith("chronox_process_"):
            continue  # the process collector's; the README names a few
        shown = family.name + "_total" if family.type == "counter" else family.name
        assert shown in documented, shown
