"""A worker's web server says whether it lives and whether it can work."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fixtures.sim import free_port
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import poll

pytestmark = pytest.mark.integration


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json()


async def test_health_and_ready_answer_with_json(start_worker: WorkerFactory) -> None:
    port = free_port()
    start_worker(web_enabled=True, web_port=port)
    base = f"http://127.0.0.1:{port}"
    status, body = await get(f"{base}/health")
    assert status == 200 and body["status"] == "ok"

    async def ready() -> Any:
        status, body = await get(f"{base}/ready")
        return body if status == 200 else None

    body = await poll(ready, timeout_s=60)
    assert body == {
        "ready": True,
        "checks": {"kafka": "ok", "postgres": "ok", "redis": "ok", "tables": "ok",
                   "postgres_sink": "ok", "redis_sink": "ok"},
    }


async def test_ready_names_the_dependency_that_is_down(start_worker: WorkerFactory) -> None:
    port = free_port()
    start_worker(
        web_enabled=True, web_port=port, postgres_dsn=f"postgresql://x:y@127.0.0.1:{free_port()}/z"
    )
    status, body = await get(f"http://127.0.0.1:{port}/ready")
    assert status == 503 and body["ready"] is False
    assert body["checks"]["postgres"].startswith("down: ")
    assert body["checks"]["redis"] == "ok"
    assert "y@" not in str(body), "no secret in the answer"
