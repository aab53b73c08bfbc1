"""The worker's ``/metrics`` page: Prometheus' text format, on the web server of ``/health``.

What it serves is :func:`chronox_stream.runtime.metrics.worker_registry`: the stages'
metrics, each consumer group's lag (the Faust agents' from Faust's monitor, over the
topics they read) and the process's. A scrape computes the lags and Faust's counts; nothing
is measured for it between scrapes.
"""

from __future__ import annotations

from typing import Any

from aiohttp.web import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chronox_stream.runtime import metrics
from chronox_stream.runtime.app import Runtime

AGENTS_GROUP = "agents"


def attach(runtime: Runtime) -> None:
    topics = runtime.topics
    inputs = (topics.control, topics.registry, topics.work, topics.ticks_bars)
    read_by_agents = {topic.get_topic_name() for topic in inputs}
    metrics.watch_lag(AGENTS_GROUP, metrics.faust_lag(runtime.app, read_by_agents))
    registry = metrics.worker_registry(runtime.app)

    @runtime.app.page("/metrics")
    async def scrape(web: Any, request: Any) -> Any:
        return Response(body=generate_latest(registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip
