"""PostgreSQL bar store: schema migration and idempotent batched upserts (asyncpg).

A batch is COPYed into a temporary table and merged with one
``INSERT ... ON CONFLICT`` that applies the precedence rule of
``chronox_stream.domain.precedence`` in SQL, comparing values as ``domain.identity``
defines, so replaying a batch changes no row, a lower-ranked source never overwrites a
higher one, and a bar that only adds vwap or transactions fills them in without counting
as a revision.

The sources a row may name, and their ranks, follow the declared sources
(``domain.sources``): the migration records them in ``<schema>.bar_sources`` and, when that
record changed (a source declared, a rank changed, or a database made before the record),
replaces the named CHECK constraint on ``source`` and the ``source_rank`` function from it.
The record only grows, so a worker that lacks an extra source's module never takes it away
from the rows of the workers that have it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeAlias

import asyncpg

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.identity import (
    FEATURE_FIELDS,
    OHLCV_FIELDS,
    sql_feature_differs,
    sql_ohlcv_differs,
)
from chronox_stream.domain.precedence import collapse
from chronox_stream.domain.sources import SOURCE_RANK, Source
from chronox_stream.domain.splits import SplitRecord, splits_ddl, upsert_splits_sql
from chronox_stream.sinks.base import SinkRecord

COLUMNS = (
    "symbol", "tf", "ts", "open", "high", "low", "close", "volume", "vwap", "transactions",
    "source",
)  # fmt: skip
#: A row of ``COLUMNS``: the bar's fields, then its source.
Row: TypeAlias = tuple[Any, ...]
_BAR_FIELDS = attrgetter(*COLUMNS[:-1])
#: The CHECK on ``bars.source``; PostgreSQL's own name for the unnamed one of earlier versions.
SOURCE_CHECK = "bars_source_check"


def copy_rows(items: Sequence[tuple[Bar, Source]]) -> list[Row]:
    """The rows to COPY for ``items``, one per (symbol, tf, ts): the bars of a key that
    repeats are merged first (:func:`~chronox_stream.domain.precedence.collapse`, in arrival
    order), as one statement may not change a row twice. Most batches come in order, each
    symbol's bars of a timeframe later and later, so no key repeats, and their rows are
    taken straight from the bars."""
    rows = [(*_BAR_FIELDS(bar), source) for bar, source in items]
    if not _in_order(rows):
        rows = [(*_BAR_FIELDS(bar), source) for bar, source in collapse(items)]
    return rows


def _in_order(rows: Sequence[Row]) -> bool:
    """Whether each (symbol, tf) has its rows in strictly increasing ``ts``: then no key
    repeats. Cheaper than a set of the keys: hashing a decoded (aware) ``ts`` cost more
    than the rest of its row."""
    ends: dict[tuple[str, str], datetime] = {}  # per key, the ts that ended its last run
    key: tuple[str, str] | None = None
    last: Any = None  # the ts of the row before
    for row in rows:
        ts = row[2]
        if key is not None and row[0] == key[0] and row[1] == key[1]:
            if ts <= last:
                return False
        else:
            if key is not None:
                ends[key] = last
            key = (row[0], row[1])
            end = ends.get(key)
            if end is not None and ts <= end:
                return False
        last = ts
    return True


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _source_check(ranks: Mapping[str, int]) -> str:
    return f"CHECK (source IN ({', '.join(_literal(name) for name in _ordered(ranks))}))"


def _ordered(ranks: Mapping[str, int]) -> list[str]:
    return sorted(ranks, key=lambda name: (-ranks[name], name))


def migration_sql(schema: str) -> str:
    """DDL that creates (idempotently) the schema, the bars table, the record of the sources
    and the splits table with the split-adjusted read path
    (:func:`~chronox_stream.domain.splits.splits_ddl`).

    Run in one transaction with :func:`record_sources_sql` and, when that changed the
    record, :func:`source_rules_sql`, under an advisory lock, so workers migrating at once
    take turns.
    """
    s = _quote(schema)
    return f"""
SELECT pg_advisory_xact_lock(hashtext('chronox-migrate:' || {_literal(schema)}));
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.bars (
    symbol       text             NOT NULL,
    tf           text             NOT NULL,
    ts           timestamptz      NOT NULL,
    open         double precision NOT NULL,
    high         double precision NOT NULL,
    low          double precision NOT NULL,
    close        double precision NOT NULL,
    volume       double precision NOT NULL,
    vwap         double precision,
    transactions bigint,
    source       text             NOT NULL CONSTRAINT {SOURCE_CHECK} {_source_check(SOURCE_RANK)},
    revision     integer          NOT NULL DEFAULT 1,
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, tf, ts)
);
CREATE TABLE IF NOT EXISTS {s}.bar_sources (
    name text    PRIMARY KEY,
    rank integer NOT NULL
);
{splits_ddl(schema)}"""


def record_sources_sql(schema: str) -> str:
    """Add the sources ``$1`` with the ranks ``$2`` to the record, or update their rank; the
    status counts the rows added or changed (none: the constraint and function stand)."""
    s = _quote(schema)
    return f"""
INSERT INTO {s}.bar_sources AS r (name, rank)
SELECT * FROM unnest($1::text[], $2::integer[])
ON CONFLICT (name) DO UPDATE SET rank = EXCLUDED.rank WHERE r.rank <> EXCLUDED.rank
"""


def source_rules_sql(schema: str, ranks: Mapping[str, int]) -> str:
    """The CHECK on ``source`` (dropped and added again, by name) and the rank function for
    the recorded sources ``ranks``; an unknown source ranks 0."""
    s = _quote(schema)
    cases = " ".join(f"WHEN {_literal(name)} THEN {ranks[name]}" for name in _ordered(ranks))
    return f"""
ALTER TABLE {s}.bars DROP CONSTRAINT IF EXISTS {SOURCE_CHECK},
    ADD CONSTRAINT {SOURCE_CHECK} {_source_check(ranks)};
CREATE OR REPLACE FUNCTION {s}.source_rank(text) RETURNS integer
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE $1 {cases} ELSE 0 END $$;
"""


def upsert_sql(schema: str) -> str:
    """The merge of ``bars_in`` into the table: :func:`~chronox_stream.domain.precedence.merge`
    in SQL.

    A correction (OHLCV differ, or a field both rows have) from a rank at least as high
    replaces the row and bumps ``revision``; an enrichment (a field the row lacks) from a
    rank at least as high fills it (``COALESCE``), and a same or poorer bar from a higher
    rank takes over the source, neither bumping ``revision``. Anything else changes nothing.
    """
    s = _quote(schema)
    cols = ", ".join(COLUMNS)
    corrected = " OR ".join(
        [sql_ohlcv_differs("b", "EXCLUDED"),
         *(sql_feature_differs("b", "EXCLUDED", c) for c in FEATURE_FIELDS)]
    )  # fmt: skip
    adds = " OR ".join(f"(b.{c} IS NULL AND EXCLUDED.{c} IS NOT NULL)" for c in FEATURE_FIELDS)
    rank_new, rank_old = f"{s}.source_rank(EXCLUDED.source)", f"{s}.source_rank(b.source)"
    fills = ", ".join(
        f"{c} = CASE WHEN {corrected} THEN EXCLUDED.{c} ELSE COALESCE(b.{c}, EXCLUDED.{c}) END"
        for c in FEATURE_FIELDS
    )
    return f"""
INSERT INTO {s}.bars AS b ({cols})
SELECT {cols} FROM bars_in
ON CONFLICT (symbol, tf, ts) DO UPDATE
SET {", ".join(f"{c} = EXCLUDED.{c}" for c in OHLCV_FIELDS)}, {fills},
    source = CASE WHEN ({corrected}) OR {rank_new} > {rank_old}
                  THEN EXCLUDED.source ELSE b.source END,
    revision = b.revision + CASE WHEN {corrected} THEN 1 ELSE 0 END,
    updated_at = now()
WHERE (({corrected}) AND {rank_new} >= {rank_old})
   OR (({adds}) AND {rank_new} >= {rank_old})
   OR {rank_new} > {rank_old}
"""


class PostgresSink:
    """Writes batches of bars to ``<schema>.bars``; safe to call again with the same batch."""

    def __init__(self, pool: asyncpg.Pool, *, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self._upsert = upsert_sql(schema)

    @classmethod
    async def connect(cls, dsn: str, *, schema: str, timeout_s: float) -> PostgresSink:
        """A pool whose connects and statements give up after ``timeout_s``: a server that
        stopped answering (black-holed, not closed) fails a write, which is then retried,
        instead of hanging the worker."""
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=4, timeout=timeout_s, command_timeout=timeout_s
        )
        return cls(pool, schema=schema)

    async def migrate(self) -> None:
        """Create what is missing; rewrite the source rules when the declared sources changed."""
        names = list(SOURCE_RANK)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(migration_sql(self._schema))
            status = await conn.execute(
                record_sources_sql(self._schema), names, [SOURCE_RANK[n] for n in names]
            )
            if int(status.rsplit(" ", 1)[-1]):
                recorded = await conn.fetch(
                    f"SELECT name, rank FROM {_quote(self._schema)}.bar_sources"
                )
                ranks = {row["name"]: row["rank"] for row in recorded}
                await conn.execute(source_rules_sql(self._schema, ranks))

    async def write(self, items: Sequence[tuple[Bar, Source]]) -> int:
        """Upsert a batch in one transaction; return the number of rows inserted or changed."""
        rows = copy_rows(items)
        if not rows:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"CREATE TEMP TABLE bars_in (LIKE {_quote(self._schema)}.bars INCLUDING DEFAULTS) "
                "ON COMMIT DROP"
            )
            await conn.copy_records_to_table("bars_in", records=rows, columns=COLUMNS)
            status = await conn.execute(self._upsert)
        return int(status.rsplit(" ", 1)[-1])

    async def store(self, batch: Sequence[SinkRecord]) -> None:
        """:class:`~chronox_stream.sinks.base.BarSink`'s write: upsert the batch's bars."""
        await self.write([(record.bar, record.source) for record in batch])

    async def write_splits(self, records: Sequence[SplitRecord]) -> int:
        """Upsert splits in one transaction; return how many rows were inserted or changed."""
        if not records:
            return 0
        sql = upsert_splits_sql(self._schema)
        changed = 0
        async with self._pool.acquire() as conn, conn.transaction():
            for r in records:
                status = await conn.execute(
                    sql, r.symbol, r.execution_date, r.split_from, r.split_to
                )
                changed += int(status.rsplit(" ", 1)[-1])
        return changed

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")

    async def close(self) -> None:
        await self._pool.close()
