"""A worker, ``chronox ingest --wait`` and a backfill through the stack's SASL_SSL listener only.

Every Kafka client of the run (the worker's Faust app, its batch consumers and producers,
the command's producer and readers, the admin creating the topics) reaches the broker on
``kafka_sasl_ssl_port`` with the stack's CA and SCRAM user, as on a managed cluster. The
listener and its files are found from the settings and the stack folder, so the test runs
against whatever stack is up.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from chronox_stream.settings import Settings
from chronox_stream.stack.endpoints import Endpoint, kafka_endpoint, port_open
from chronox_stream.stack.kafka import sasl_ssl_client
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, rest_aggregates

pytestmark = pytest.mark.integration

SECURITY = ("kafka_bootstrap", "kafka_security_protocol", "kafka_sasl_mechanism",
            "kafka_sasl_username", "kafka_sasl_password", "kafka_ssl_cafile")  # fmt: skip
DAY = "2024-01-16"


def chronox(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([sys.executable, "-m", "chronox_stream", *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


async def secured(settings: Settings) -> Settings:
    """``settings`` through the SASL_SSL listener of the stack that is up."""
    listener = Endpoint(kafka_endpoint(settings.kafka_bootstrap).host, settings.kafka_sasl_ssl_port)
    if not await port_open(listener):
        pytest.fail(f"no SASL_SSL listener on {listener}: the stack was started before it "
                    "existed; run `chronox stack down` and `chronox stack up`")  # fmt: skip
    return sasl_ssl_client(settings)


async def test_worker_ingest_and_backfill_through_sasl_ssl_only(
    settings: Settings, sim: Any, start_worker: WorkerFactory
) -> None:
    secure = await secured(settings)
    start_worker(**{name: getattr(secure, name) for name in SECURITY})
    expected = await rest_aggregates(sim.rest_url, sim.api_key, "AAPL", f"1/minute/{DAY}/{DAY}")
    assert expected

    done = await asyncio.to_thread(chronox, secure, "ingest", "--symbols", "AAPL", "--strategy",
                                   "api", "--start", DAY, "--end", DAY, "--wait", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert f"{len(expected)} bar(s) emitted" in done.stdout

    async def landed() -> bool:
        rows = await fetch_rows(secure, "SELECT count(*) AS n FROM {schema}.bars")
        return bool(rows) and rows[0]["n"] == len(expected)

    assert await poll(landed, timeout_s=30), "the bars did not reach PostgreSQL"


async def test_a_wrong_password_fails_without_printing_a_secret(settings: Settings) -> None:
    secure = await secured(settings)
    wrong = secure.with_overrides(kafka_sasl_password="Wr0ng-Passw0rd-123")

    done = await asyncio.to_thread(chronox, wrong, "ingest", "--symbols", "AAPL")

    output = done.stdout + done.stderr
    assert done.returncode == 3, output  # Kafka unreachable: it refused the connection
    assert "Traceback" not in output and len(done.stderr.strip().splitlines()) == 1, output
    assert done.stderr.startswith("Error: cannot reach Kafka at "), output
    assert "Wr0ng-Passw0rd-123" not in output
    assert secure.kafka_sasl_password is not None
    assert secure.kafka_sasl_password.get_secret_value() not in output
