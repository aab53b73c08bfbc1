"""Health pages of the worker's web server (``CHRONOX_WEB_ENABLED``): ``/health`` and ``/ready``.

``/health`` answers while the process runs (liveness: restart it when this
fails). ``/ready`` says whether the worker can do its work now: Kafka,
PostgreSQL and Redis answer, the tables are recovered and each sink's latest
write went through (a sink retrying a write against a store that is down is
behind, even when the store answers a ping again); it is 503 otherwise, with
the failing check named, so a load balancer or an operator sees why.
The server listens on ``CHRONOX_WEB_BIND`` (loopback by default) and serves
nothing else (``chronox_stream/runtime/web_server.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chronox_stream.runtime.app import Runtime
from chronox_stream.runtime.faust_shims import tables_recovered
from chronox_stream.runtime.topics import partitions_of

CHECK_TIMEOUT_S = 2.0


async def _check(probe: Callable[[], Awaitable[Any]]) -> str:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except Exception as exc:  # any failure is the answer, named without secrets
        return f"down: {type(exc).__name__}"
    return "ok"


async def readiness(runtime: Runtime) -> dict[str, str]:
    """Each dependency's state: ``ok`` or ``down: <error type>``."""

    async def kafka() -> None:
        if not await partitions_of(runtime.settings, runtime.topics.control.get_topic_name()):
            raise LookupError("control topic missing")

    async def postgres() -> None:
        await (await runtime.postgres()).ping()

    async def redis() -> None:
        await runtime.redis().ping()

    async def tables() -> None:
        if not tables_recovered(runtime.app):
            raise RuntimeError("recovering")

    names = ("kafka", "postgres", "redis", "tables")
    results = await asyncio.gather(*(_check(p) for p in (kafka, postgres, redis, tables)))
    checks = dict(zip(names, results, strict=True))
    for sink in ("postgres", "redis"):
        checks[f"{sink}_sink"] = runtime.sink_health.state(sink)
    return checks


def attach(runtime: Runtime) -> None:
    app = runtime.app
    started = time.monotonic()

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "uptime_s": round(time.monotonic() - started, 1)})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        checks = await readiness(runtime)
        ok = all(state == "ok" for state in checks.values())
        return web.json({"ready": ok, "checks": checks}, status=200 if ok else 503)
