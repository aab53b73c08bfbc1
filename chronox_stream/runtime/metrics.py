"""The worker's Prometheus metrics: what each stage records, and the registry ``/metrics`` serves.

Contract: every name starts with ``chronox_``; a label takes few values (a source, a
timeframe, a sink, a reason code, a topic, a consumer group, an HTTP status), never a
symbol. The README's "Metrics and dashboards" lists them all; the dashboard's queries are
checked against :func:`worker_registry` by a unit test.

The tick aggregator, the emitter and the sinks are at their speed targets, so they record
once per batch (``inc(n)``, one observation), never per tick or bar, through the helpers
below, which keep each label child once made (a ``labels()`` call takes a lock and hashes
its values).

What Faust measures already is read from its ``Monitor`` (on in every app) when a scrape
comes, not counted again: its messages and events, its rebalances, and the end and read
offsets that give the agents' lag. Faust's own Prometheus sensor is not used: it replaces
that monitor with one that makes several ``labels()`` calls per event, and the stream bars
agent takes one event per bar.

Consumer lag is computed at scrape time too, per group of this worker: the batch loops
(ticks, sinks) register a probe while they run (:func:`lag_probe`), and the Faust agents'
comes from the monitor. A worker is one process: the metrics are the process's.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.timeframes import TIMEFRAMES

if TYPE_CHECKING:  # the app is only read; importing Faust is the worker's business
    import faust

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", Counter, Histogram, Gauge)

#: Seconds from a moment to its effect: milliseconds (a live bar) to an hour (a replay).
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
#: Seconds one sink write takes.
WRITE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Envelopes in one sink write (a batch holds at most 5,000).
SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: The HTTP statuses a REST request is counted under by number; any other is its class.
REST_STATUSES = frozenset({200, 400, 401, 403, 404, 413, 429, 499, 500, 502, 503, 504})

TICKS_CONSUMED = Counter("chronox_ticks_consumed", "Records read from the raw ticks topic "
                         "by the tick aggregator (trades, feed markers, refused records).",
                         registry=None)  # fmt: skip
TICKS_FOLDED = Counter("chronox_ticks_folded", "Trades folded into bars by the tick aggregator.",
                       registry=None)  # fmt: skip
TICKS_LATE = Counter("chronox_ticks_late", "Trades dropped as later than the late limit.",
                     registry=None)  # fmt: skip
TICK_BAR_LATENCY = Histogram(
    "chronox_tick_bar_latency_seconds",
    "From the close of the newest bar of a batch the tick aggregator sends to ticks.bars to "
    "its acknowledgement by Kafka; one observation per batch.",
    buckets=LATENCY_BUCKETS, registry=None,
)  # fmt: skip
BARS_EMITTED = Counter("chronox_bars_emitted", "Bars published to the bar topics, by source and "
                       "timeframe (after dedup).", ["source", "timeframe"],
                       registry=None)  # fmt: skip
DEDUP_DROPPED = Counter("chronox_dedup_dropped", "Bars the dedup table did not let through "
                        "(already emitted, or outranked), by source.", ["source"],
                        registry=None)  # fmt: skip
DEAD_LETTERS = Counter("chronox_dead_letters", "Records sent to the dead-letter topic, by reason "
                       "code and the topic they came from ('none': not from a topic).",
                       ["reason", "topic"], registry=None)  # fmt: skip
REST_REQUESTS = Counter("chronox_rest_requests", "REST requests to the Polygon API, by HTTP "
                        "status ('error': no answer; '4xx'/'5xx': another status).", ["status"],
                        registry=None)  # fmt: skip
REST_RETRIES = Counter("chronox_rest_retries", "REST requests retried after a transient fault.",
                       registry=None)  # fmt: skip
WS_RECONNECTS = Counter("chronox_ws_reconnects", "WebSocket connections to the trade stream lost "
                        "and retried.", registry=None)  # fmt: skip
WS_CONNECTED = Gauge("chronox_ws_connected", "1 while this worker's trade stream is connected "
                     "(the leader's), else 0.", registry=None)  # fmt: skip
SINK_BATCH_SIZE = Histogram("chronox_sink_batch_size", "Envelopes per write, by sink.", ["sink"],
                            buckets=SIZE_BUCKETS, registry=None)  # fmt: skip
SINK_WRITE_SECONDS = Histogram("chronox_sink_write_seconds", "Time one batch write takes, "
                               "retries included, by sink.", ["sink"], buckets=WRITE_BUCKETS,
                               registry=None)  # fmt: skip
BAR_SINK_LATENCY = Histogram(
    "chronox_bar_sink_latency_seconds",
    "From the Kafka timestamp of the oldest envelope of a batch (when it was produced) to its "
    "write, by sink; one observation per batch.",
    ["sink"], buckets=LATENCY_BUCKETS, registry=None,
)  # fmt: skip

METRICS: tuple[Counter | Gauge | Histogram, ...] = (
    TICKS_CONSUMED, TICKS_FOLDED, TICKS_LATE, TICK_BAR_LATENCY, BARS_EMITTED, DEDUP_DROPPED,
    DEAD_LETTERS, REST_REQUESTS, REST_RETRIES, WS_RECONNECTS, WS_CONNECTED, SINK_BATCH_SIZE,
    SINK_WRITE_SECONDS, BAR_SINK_LATENCY,
)  # fmt: skip


class Children(Generic[K, M]):
    """The label children of one metric, each made once: ``children[values]``."""

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._made: dict[K, M] = {}

    def __getitem__(self, values: K) -> M:
        child = self._made.get(values)
        if child is None:
            labels = values if isinstance(values, tuple) else (values,)
            child = self._made[values] = self._metric.labels(*labels)
        return child


_emitted: Children[tuple[str, str], Counter] = Children(BARS_EMITTED)
_dropped: Children[str, Counter] = Children(DEDUP_DROPPED)
_dead: Children[tuple[str, str], Counter] = Children(DEAD_LETTERS)
_rest: Children[str, Counter] = Children(REST_REQUESTS)
_sizes: Children[str, Histogram] = Children(SINK_BATCH_SIZE)
_writes: Children[str, Histogram] = Children(SINK_WRITE_SECONDS)
_landed: Children[str, Histogram] = Children(BAR_SINK_LATENCY)
_tf = attrgetter("tf")


def ticks_read(consumed: int, folded: int, late: int) -> None:
    """One batch of the tick aggregator: records read, trades folded, trades dropped late."""
    TICKS_CONSUMED.inc(consumed)
    TICKS_FOLDED.inc(folded)
    if late:
        TICKS_LATE.inc(late)


def newest_close(bars: Iterable[Bar]) -> float:
    """The latest moment (epoch seconds) at which one of ``bars`` closed: its start plus its
    width."""
    return max(bar.ts.timestamp() + TIMEFRAMES[bar.tf].seconds for bar in bars)


def tick_bars_sent(bars: Sequence[Bar], now: Callable[[], float] = time.time) -> None:
    """A batch of bars from ticks acknowledged on ``ticks.bars``: how long after the newest
    one's close."""
    if bars:
        TICK_BAR_LATENCY.observe(max(now() - newest_close(bars), 0.0))


def emitted(source: str, chunks: Iterable[Sequence[Bar]], dropped: int) -> None:
    """One emit of ``source``: the bars of ``chunks`` are on the bar topics (counted per
    timeframe), ``dropped`` others were refused by dedup."""
    tally: Tally[str] = Tally()
    for bars in chunks:
        tally.update(map(_tf, bars))
    for tf, n in tally.items():
        _emitted[source, tf].inc(n)
    if dropped:
        _dropped[source].inc(dropped)


def dead_lettered(reason: str, topic: str | None) -> None:
    _dead[reason, topic or "none"].inc()


def status_label(status: int | None) -> str:
    """The ``status`` label of a REST request: the code if known, else its class; ``error``
    when no status came back (timeout, connection refused)."""
    if status is None:
        return "error"
    if status in REST_STATUSES:
        return str(status)
    return f"{status // 100}xx"


def rest_request(status: int | None) -> None:
    _rest[status_label(status)].inc()


def rest_retry() -> None:
    REST_RETRIES.inc()


def ws_reconnect() -> None:
    WS_RECONNECTS.inc()


def ws_connected(connected: bool) -> None:
    WS_CONNECTED.set(1 if connected else 0)


def sink_written(sink: str, size: int, seconds: float, oldest_ms: int | None,
                 now: Callable[[], float] = time.time) -> None:  # fmt: skip
    """One batch of ``size`` envelopes written by ``sink`` in ``seconds``; ``oldest_ms`` is
    the Kafka timestamp of its oldest record, if known."""
    _sizes[sink].observe(size)
    _writes[sink].observe(seconds)
    if oldest_ms is not None and oldest_ms >= 0:
        _landed[sink].observe(max(now() - oldest_ms / 1000, 0.0))


# Consumer lag ------------------------------------------------------------------------------

#: Per consumer group: a probe of this worker's lag in it (None: unknown now).
LagProbe = Callable[[], "int | None"]
_lag_probes: dict[str, LagProbe] = {}


def watch_lag(group: str, probe: LagProbe) -> None:
    """Report ``probe`` as this worker's lag in ``group`` from now on."""
    _lag_probes[group] = probe


@contextmanager
def lag_probe(group: str, probe: LagProbe) -> Iterator[None]:
    """Report ``probe`` as this worker's lag in ``group`` while the block runs."""
    watch_lag(group, probe)
    try:
        yield
    finally:
        if _lag_probes.get(group) is probe:
            del _lag_probes[group]


def lag(ends: Mapping[K, int | None], positions: Mapping[K, int | None]) -> int | None:
    """Records not read yet over the partitions whose end and position are both known:
    ``end - position`` each (never below 0), summed; None when no partition is known."""
    total, known = 0, False
    for tp, end in ends.items():
        position = positions.get(tp)
        if end is None or position is None:
            continue
        total += max(end - position, 0)
        known = True
    return total if known else None


def faust_positions(read: Mapping[K, int], committed: Mapping[K, int],
                    assigned: Collection[K]) -> dict[K, int]:  # fmt: skip
    """Where Faust's consumer stands in each assigned partition: after the last message it
    read, else at its committed offset (the next to read)."""
    positions: dict[K, int] = {}
    for tp in assigned:
        if tp in read:
            positions[tp] = read[tp] + 1
        elif tp in committed:
            positions[tp] = committed[tp]
    return positions


def faust_lag(app: faust.App, topics: Collection[str]) -> LagProbe:
    """The lag probe of the Faust agents' group, over the partitions of ``topics`` (the
    agents' input) this worker holds, from Faust's monitor."""

    def probe() -> int | None:
        monitor = app.monitor
        assigned = [tp for tp in app.consumer.assignment() if tp.topic in topics]
        ends = {tp: monitor.tp_end_offsets.get(tp) for tp in assigned}
        return lag(ends, faust_positions(monitor.tp_read_offsets, monitor.tp_committed_offsets,
                                         assigned))  # fmt: skip

    return probe


class _LagCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("chronox_consumer_lag", "Records of the group's partitions "
                                   "held by this worker not processed yet, by consumer group.",
                                   labels=["group"])  # fmt: skip
        for group, probe in sorted(_lag_probes.items()):
            try:
                value = probe()
            except Exception:  # a consumer between two assignments has no answer: skip it
                continue
            if value is not None:
                family.add_metric([group], value)
        yield family


class _FaustCollector(Collector):
    """Faust's monitor's counts of the agents' messages, read at scrape time."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    def collect(self) -> Iterable[Metric]:
        monitor = self._app.monitor
        counts: tuple[tuple[str, str, Any], ...] = (
            ("messages_received", "Messages the Faust agents' consumer received.",
             monitor.messages_received_total),
            ("events", "Events the Faust agents processed.", monitor.events_total),
            ("messages_sent", "Messages sent through Faust's producer by Faust's API.",
             monitor.messages_sent),
            ("rebalances", "Rebalances of the Faust agents' group.", monitor.rebalances or 0),
        )  # fmt: skip
        for name, documentation, value in counts:
            yield CounterMetricFamily(f"chronox_faust_{name}", documentation, value=value)


def worker_registry(app: faust.App) -> CollectorRegistry:
    """The registry a worker's ``/metrics`` serves: the metrics above, the consumer lag,
    Faust's counts from ``app``'s monitor and the process (CPU, memory, open files)."""
    registry = CollectorRegistry()
    for metric in METRICS:
        registry.register(metric)
    registry.register(_LagCollector())
    registry.register(_FaustCollector(app))
    ProcessCollector(namespace="chronox", registry=registry)
    return registry
