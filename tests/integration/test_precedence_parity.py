"""The precedence rule in PostgreSQL is the Python rule: the same cases through both.

Every pair of (kept bar, new bar) over a set of field variants and every pair of sources
is written to a real schema, one key per case, first the kept bar, then the new one; the
row must be what ``precedence.merge`` says, with ``revision`` 2 exactly for a correction.
The cases of ``domain.identity`` (how numbers and absent fields compare) go through the
dedup table's rule, ``merge`` and PostgreSQL alike.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.dedup import admit, emitted_of
from chronox_stream.domain.precedence import merge
from chronox_stream.domain.sources import SOURCE_RANK, Source
from chronox_stream.settings import Settings
from chronox_stream.sinks.postgres import PostgresSink
from tests.unit.domain.test_identity import CASES as IDENTITY_CASES

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 16, 9, tzinfo=UTC)
BASE = Bar(symbol="AAPL", tf="1m", ts=T0, open=10, high=11, low=9.5, close=10.5, volume=1200)
VARIANTS = [
    replace(BASE),  # neither field
    replace(BASE, transactions=7),  # a flat file's bar
    replace(BASE, vwap=10.25),
    replace(BASE, vwap=10.25, transactions=7),  # the api's bar
    replace(BASE, vwap=10.3, transactions=7),  # another vwap
    replace(BASE, vwap=10.25, transactions=8),  # another count
    replace(BASE, close=10.6, vwap=10.25, transactions=7),  # other OHLCV
]
SOURCES: list[Source] = list(SOURCE_RANK)
CASES = list(itertools.product(VARIANTS, SOURCES, VARIANTS, SOURCES))


@pytest.fixture
def schema() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def sink(stack: Settings, schema: str) -> AsyncIterator[PostgresSink]:
    sink = await PostgresSink.connect(stack.postgres_dsn.get_secret_value(), schema=schema,
                                      timeout_s=30)  # fmt: skip
    await sink.migrate()
    yield sink
    await sink.close()
    conn = await asyncpg.connect(stack.postgres_dsn.get_secret_value())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def at(bar: Bar, i: int) -> Bar:
    return replace(bar, ts=T0 + timedelta(minutes=i))


async def rows(stack: Settings, schema: str) -> dict[datetime, Any]:
    conn = await asyncpg.connect(stack.postgres_dsn.get_secret_value())
    try:
        found = await conn.fetch(f'SELECT * FROM "{schema}".bars')
    finally:
        await conn.close()
    return {r["ts"]: r for r in found}


def stored(row: Any) -> tuple[Bar, str]:
    return Bar(symbol=row["symbol"], tf=row["tf"], ts=row["ts"], open=row["open"],
               high=row["high"], low=row["low"], close=row["close"], volume=row["volume"],
               vwap=row["vwap"], transactions=row["transactions"]), row["source"]  # fmt: skip


@pytest.mark.timeout(120)
async def test_postgres_applies_the_python_rule(
    stack: Settings, schema: str, sink: PostgresSink
) -> None:
    await sink.write([(at(old, i), s) for i, (old, s, _, _) in enumerate(CASES)])
    first = await rows(stack, schema)
    await sink.write([(at(new, i), s) for i, (_, _, new, s) in enumerate(CASES)])
    await sink.write([(at(new, i), s) for i, (_, _, new, s) in enumerate(CASES)])  # a replay
    after = await rows(stack, schema)
    mismatches = []
    for i, (old, old_source, new, new_source) in enumerate(CASES):
        ts = T0 + timedelta(minutes=i)
        merged = merge(at(old, i), old_source, at(new, i), new_source)
        if merged is None:
            expected = (at(old, i), old_source, 1)
            unchanged = after[ts]["updated_at"] == first[ts]["updated_at"]
        else:
            expected = (merged.bar, merged.source, 2 if merged.revised else 1)
            unchanged = True
        got = (*stored(after[ts]), after[ts]["revision"])
        if got != expected or not unchanged:
            mismatches.append((old, old_source, new, new_source, got, expected))
    assert mismatches == [], f"{len(mismatches)} of {len(CASES)} cases differ: {mismatches[:3]}"


@pytest.mark.timeout(120)
async def test_one_batch_holding_both_bars_ends_as_the_python_rule(
    stack: Settings, schema: str, sink: PostgresSink
) -> None:
    await sink.write([item for i, (old, s1, new, s2) in enumerate(CASES)
                      for item in ((at(old, i), s1), (at(new, i), s2))])  # fmt: skip
    after = await rows(stack, schema)
    for i, (old, old_source, new, new_source) in enumerate(CASES):
        merged = merge(at(old, i), old_source, at(new, i), new_source)
        bar, source = (at(old, i), old_source) if merged is None else (merged.bar, merged.source)
        row = after[T0 + timedelta(minutes=i)]
        assert (*stored(row), row["revision"]) == (bar, source, 1)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("source", ["api", "stream"])
async def test_postgres_compares_numbers_as_dedup_and_precedence_do(
    stack: Settings, schema: str, sink: PostgresSink, source: Source
) -> None:
    """The identity cases (``tests/unit/test_identity.py``: ``100`` and ``100.0``, ``-0.0``,
    float noise, absent fields) end in PostgreSQL as in the dedup table and ``merge``."""
    await sink.write([(at(old, i), source) for i, (_, old, _, _) in enumerate(IDENTITY_CASES)])
    first = await rows(stack, schema)
    await sink.write([(at(new, i), source) for i, (_, _, new, _) in enumerate(IDENTITY_CASES)])
    after = await rows(stack, schema)
    for i, (name, old, new, rel) in enumerate(IDENTITY_CASES):
        ts = T0 + timedelta(minutes=i)
        merged = merge(at(old, i), source, at(new, i), source)
        passed = admit(emitted_of(old, source), new, source) is not None
        assert passed == (merged is not None) == (rel in ("correction", "enrichment")), name
        row = after[ts]
        if merged is None:
            assert row["updated_at"] == first[ts]["updated_at"], f"{name}: PostgreSQL changed it"
        else:
            got = (*stored(row), row["revision"])
            assert got == (merged.bar, source, 2 if merged.revised else 1), name
