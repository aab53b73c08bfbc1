"""A worker's web server says whether it lives and whether it can work, on loopback only."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fixtures.sim import free_port
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import poll

pytestmark = pytest.mark.integration

LISTEN = "0A"  # TCP state code of a listening socket in /proc/net/tcp
# Faust's built-in pages (router, tables, index, statistics, graph) and guesses; /metrics is ours.
FAUST_PAGES = ("/", "/router", "/router/", "/table", "/table/", "/stats/", "/assignment/",
               "/graph", "/graph/", "/performance/", "/signal/")  # fmt: skip


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json()


async def status_of(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on ``port`` (Linux: /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == LISTEN and int(hex_port, 16) == port:
            found.add(str(ipaddress.IPv4Address(socket.ntohl(int(address, 16)))))
    return found


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


async def test_only_loopback_and_only_our_pages_by_default(start_worker: WorkerFactory) -> None:
    port = free_port()
    start_worker(web_enabled=True, web_port=port)
    base = f"http://127.0.0.1:{port}"
    assert await status_of(f"{base}/health") == 200
    assert listening_addresses(port) == {"127.0.0.1"}
    answers = {page: await status_of(base + page) for page in FAUST_PAGES}
    assert answers == dict.fromkeys(FAUST_PAGES, 404)


async def test_the_bind_setting_opens_the_pages_to_other_hosts(
    start_worker: WorkerFactory,
) -> None:
    port = free_port()
    start_worker(web_enabled=True, web_port=port, web_bind="0.0.0.0")
    assert await status_of(f"http://127.0.0.1:{port}/health") == 200
    assert listening_addresses(port) == {"0.0.0.0"}


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
