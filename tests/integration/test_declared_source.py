"""Adding a source is one declaration plus its runner (``tests/fixtures/vendor_source.py``).

A worker that imports the module (``CHRONOX_SOURCE_MODULES``) runs the source as a phase of
a registry strategy, its bars pass dedup with its rank and reach PostgreSQL under its name;
and a database made before the source existed (the CHECK of earlier versions) accepts its
rows once migrated.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.client.registry import read_entries, send_commands
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.precedence import merge
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.domain.sources import SOURCE_RANK
from chronox_stream.settings import Settings
from chronox_stream.sinks.postgres import PostgresSink
from tests.fixtures import vendor_source
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, wait_finished

pytestmark = pytest.mark.integration

VENDOR = vendor_source.SPEC
MODULE = vendor_source.__name__


@pytest.mark.timeout(300)
async def test_a_declared_source_runs_as_a_phase_and_lands_with_its_name_and_rank(
    settings: Settings, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    strategy = f"api+{VENDOR.name}"
    await send_commands(settings, [RegistryCommand(op="add", symbol="AAPL", strategy=strategy)])
    start_worker(source_modules=MODULE)

    async def registered() -> Any:
        entries = await read_entries(settings)
        return entries or None

    (entry,) = await poll(registered, timeout_s=60)
    assert entry.strategy == strategy, "the registry parses the new phase"
    rid = "vendor-1"
    doc = {"request_id": rid, "start": "2024-01-16", "end": "2024-01-16"}
    await producer.send_and_wait(settings.topic("control"), key=rid.encode(),
                                 value=orjson.dumps(doc))  # fmt: skip
    events = await wait_finished(settings, rid, timeout_s=180)
    started = [e["phase"] for e in events if e["state"] == "started"]
    assert started == ["api", VENDOR.name], "the declared order: after api"
    done = {e["phase"]: e["count"] for e in events if e["state"] == "done"}
    assert done["api"] > 300
    assert done[VENDOR.name] == done["api"], "a higher rank takes over every api bar"

    async def settled() -> Any:
        sql = "SELECT source, revision, count(*) AS n FROM {schema}.bars GROUP BY 1, 2"
        first = await fetch_rows(settings, sql)
        await asyncio.sleep(1)
        second = await fetch_rows(settings, sql)
        counts = {(r["source"], r["revision"]): r["n"] for r in second}
        return counts if second and first == second and (VENDOR.name, 1) in counts else None

    counts = await poll(settled, timeout_s=60)
    assert counts == {(VENDOR.name, 1): done["api"]}, "the same values: a promotion, no revision"
    (rank,) = await fetch_rows(settings, "SELECT {schema}.source_rank($1) AS r", VENDOR.name)
    assert rank["r"] == VENDOR.rank

    async def backfilled() -> Any:
        (entry,) = await read_entries(settings)
        return entry if entry.last_backfill is not None and entry.status == "idle" else None

    assert (await poll(backfilled, timeout_s=60)).last_error is None


def _old_ddl(schema: str) -> str:
    """The bars table and rank function as versions before the source registry made them."""
    return f"""
CREATE SCHEMA "{schema}";
CREATE TABLE "{schema}".bars (
    symbol text NOT NULL, tf text NOT NULL, ts timestamptz NOT NULL,
    open double precision NOT NULL, high double precision NOT NULL,
    low double precision NOT NULL, close double precision NOT NULL,
    volume double precision NOT NULL, vwap double precision, transactions bigint,
    source text NOT NULL CHECK (source IN ('flatpack', 'api', 'stream', 'snapshot')),
    revision integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, tf, ts)
);
CREATE FUNCTION "{schema}".source_rank(text) RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE $1 WHEN 'flatpack' THEN 3 WHEN 'api' THEN 3 WHEN 'stream' THEN 2
   WHEN 'snapshot' THEN 1 ELSE 0 END $$;
INSERT INTO "{schema}".bars (symbol, tf, ts, open, high, low, close, volume, source)
VALUES ('AAPL', '1m', '2024-01-16 15:00Z', 10, 11, 9.5, 10.5, 1200, 'api');
"""


@pytest.fixture
async def old_schema(stack: Settings) -> AsyncIterator[str]:
    schema = f"t{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(stack.postgres_dsn.get_secret_value())
    try:
        await conn.execute(_old_ddl(schema))
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def _check_oid(conn: asyncpg.Connection, schema: str) -> int:
    return int(await conn.fetchval(
        "SELECT oid FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'",
        f'"{schema}".bars',
    ))  # fmt: skip


@pytest.mark.timeout(60)
async def test_migration_lets_an_existing_database_accept_a_new_source(
    stack: Settings, old_schema: str
) -> None:
    dsn = stack.postgres_dsn.get_secret_value()
    ts = datetime(2024, 1, 16, 15, tzinfo=UTC)
    kept = Bar(symbol="AAPL", tf="1m", ts=ts, open=10, high=11, low=9.5, close=10.5, volume=1200)
    new_key = Bar(symbol="MSFT", tf="1m", ts=ts, open=20, high=21, low=19, close=20, volume=5)
    conn = await asyncpg.connect(dsn)
    sink = await PostgresSink.connect(dsn, schema=old_schema, timeout_s=30)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await sink.write([(new_key, VENDOR.name)])  # the old constraint refuses it
        await sink.migrate()
        migrated = await _check_oid(conn, old_schema)
        assert await sink.write([(new_key, VENDOR.name), (kept, VENDOR.name)]) == 2
        rows = {r["symbol"]: r for r in await conn.fetch(f'SELECT * FROM "{old_schema}".bars')}
        expected = merge(kept, "api", kept, VENDOR.name)
        assert expected is not None
        assert (rows["AAPL"]["source"], rows["AAPL"]["revision"]) == (expected.source, 1)
        assert rows["MSFT"]["source"] == VENDOR.name
        rank = await conn.fetchval(f'SELECT "{old_schema}".source_rank($1)', VENDOR.name)
        assert rank == SOURCE_RANK[VENDOR.name] == VENDOR.rank
        with pytest.raises(asyncpg.CheckViolationError):
            await sink.write([(new_key, "undeclared")])  # still only declared sources
        await sink.migrate()  # nothing declared since: the constraint stays as it is
        assert await _check_oid(conn, old_schema) == migrated
    finally:
        await sink.close()
        await conn.close()
