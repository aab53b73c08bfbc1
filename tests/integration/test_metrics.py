"""A worker's ``/metrics``, scraped before and after it works: the stages' values move."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from chronox_stream.contracts.envelope import envelope
from chronox_stream.domain.bars import Bar
from chronox_stream.settings import Settings
from tests.fixtures.sim import free_port
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, wait_finished
from tests.integration.tick_data import SESSION, TICK_WORKER, produce_ticks, reported_ticks

pytestmark = pytest.mark.integration

DAY = "2024-01-16"
GROUPS = {"agents", "ticks", "sink-postgres", "sink-redis"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    """Every sample of the page, by name and labels; the page must parse as Prometheus text."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def groups(samples: Samples) -> set[str]:
    return {dict(got)["group"] for (n, got) in samples if n == "chronox_consumer_lag"}


def label_values(samples: Samples, names: Iterable[str], label: str) -> set[str]:
    return {dict(got)[label] for (n, got) in samples if n in names and label in dict(got)}


async def test_metrics_move_as_the_worker_backfills_folds_ticks_and_dead_letters(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """One worker, scraped before and after: a backfill, a session of ticks closing bars, a
    stream bar sent twice (dedup drops the second), a record to dead-letter."""
    port = free_port()
    start_worker(web_enabled=True, web_port=port, **TICK_WORKER)
    url = f"http://127.0.0.1:{port}/metrics"
    before = await scrape(url)

    ticks = reported_ticks(["NVDA"], SESSION)
    await produce_ticks(producer, settings, ticks)
    await producer.send_and_wait(settings.topic("control"), b"{not json", key=b"poison")
    twice = Bar(symbol="MSFT", tf="1m", ts=datetime(2024, 1, 16, 15, 0, tzinfo=UTC), open=1.0,
                high=2.0, low=0.5, close=1.5, volume=100.0)
    payload = envelope(twice, "stream")
    for _ in range(2):
        await producer.send_and_wait(settings.topic("ticks.bars"), payload, key=b"MSFT")
    request = {"request_id": "m-1", "symbols": ["AAPL"], "strategy": "api", "start": DAY,
               "end": DAY}  # fmt: skip
    await producer.send_and_wait(settings.topic("control"), orjson.dumps(request), key=b"m-1")
    await wait_finished(settings, "m-1")

    def grew(after: Samples, name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    async def moved() -> Samples | None:
        after = await scrape(url)
        emitted = grew(after, "chronox_bars_emitted_total", source="api", timeframe="1m")
        done = (grew(after, "chronox_ticks_consumed_total") >= len(ticks)
                and grew(after, "chronox_tick_bar_latency_seconds_count") > 0
                and emitted > 0
                and grew(after, "chronox_sink_batch_size_sum", sink="postgres") >= emitted
                and grew(after, "chronox_dedup_dropped_total", source="stream") >= 1
                and grew(after, "chronox_dead_letters_total", reason="invalid_json") >= 1
                and all(grew(after, f"chronox_{name}_count", sink=sink) >= 1
                        for name in ("sink_write_seconds", "bar_sink_latency_seconds")
                        for sink in ("postgres", "redis"))
                and grew(after, "chronox_faust_events_total") >= 3
                and GROUPS <= groups(after))  # fmt: skip
        return after if done else None

    after = await poll(moved, timeout_s=120)
    assert after is not None, "the worker's metrics did not move"
    api_bars = grew(after, "chronox_bars_emitted_total", source="api", timeframe="1m")
    table = f'"{settings.postgres_schema}".bars'

    async def stored() -> bool:  # the sink's batches count the stream's bars too
        rows = await fetch_rows(settings, f"SELECT count(*) AS n FROM {table} WHERE source = 'api'")
        return bool(rows[0]["n"] == api_bars)

    assert await poll(stored, timeout_s=60), "every api bar counted as emitted is in PostgreSQL"
    assert grew(after, "chronox_bars_emitted_total", source="stream", timeframe="1m") > 0
    assert grew(after, "chronox_dedup_dropped_total", source="stream") >= 1, "sent twice"
    assert grew(after, "chronox_ticks_consumed_total") == len(ticks)
    assert 0 < grew(after, "chronox_ticks_folded_total") <= len(ticks)
    assert grew(after, "chronox_rest_requests_total", status="200") >= 1
    control = settings.topic("control")
    assert grew(after, "chronox_dead_letters_total", reason="invalid_json", topic=control) == 1
    for sink in ("postgres", "redis"):
        assert grew(after, "chronox_sink_write_seconds_count", sink=sink) >= 1
        assert grew(after, "chronox_bar_sink_latency_seconds_count", sink=sink) >= 1
    assert grew(after, "chronox_faust_messages_received_total") >= 3, "the control messages"
    assert grew(after, "chronox_faust_events_total") >= 3
    assert total(after, "chronox_process_resident_memory_bytes") > 0
    assert not label_values(after, {name for name, _ in after}, "symbol"), "never by symbol"
