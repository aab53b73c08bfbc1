"""PostgreSQL bar store: schema migration and idempotent batched upserts (asyncpg).

A batch is COPYed into a temporary table and merged with one
``INSERT ... ON CONFLICT`` that applies the source precedence rule in SQL, so
replaying a batch changes no row and a lower-ranked source never overwrites a
higher one.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from chronox_stream.bars import SOURCE_RANK, Bar, Source
from chronox_stream.precedence import collapse
from chronox_stream.splits import SplitRecord, splits_ddl, upsert_splits_sql

COLUMNS = (
    "symbol", "tf", "ts", "open", "high", "low", "close", "volume", "vwap", "transactions",
    "source",
)  # fmt: skip
VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "vwap", "transactions")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def migration_sql(schema: str) -> str:
    """DDL that creates (idempotently) the schema, the bars table, the rank function, and the
    splits table with the split-adjusted read path (:func:`~chronox_stream.splits.splits_ddl`).

    One transaction under an advisory lock, so workers migrating at once take turns.
    """
    s = _quote(schema)
    ranks = " ".join(f"WHEN '{src}' THEN {rank}" for src, rank in SOURCE_RANK.items())
    sources = ", ".join(f"'{src}'" for src in SOURCE_RANK)
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
    source       text             NOT NULL CHECK (source IN ({sources})),
    revision     integer          NOT NULL DEFAULT 1,
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, tf, ts)
);
CREATE OR REPLACE FUNCTION {s}.source_rank(text) RETURNS integer
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE $1 {ranks} ELSE 0 END $$;
{splits_ddl(schema)}"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upsert_sql(schema: str) -> str:
    s = _quote(schema)
    cols = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*VALUE_COLUMNS, "source"))
    old = ", ".join(f"b.{c}" for c in VALUE_COLUMNS)
    new = ", ".join(f"EXCLUDED.{c}" for c in VALUE_COLUMNS)
    return f"""
INSERT INTO {s}.bars AS b ({cols})
SELECT {cols} FROM bars_in
ON CONFLICT (symbol, tf, ts) DO UPDATE
SET {updates}, revision = b.revision + 1, updated_at = now()
WHERE (({old}) IS DISTINCT FROM ({new})
       AND {s}.source_rank(EXCLUDED.source) >= {s}.source_rank(b.source))
   OR (({old}) IS NOT DISTINCT FROM ({new})
       AND {s}.source_rank(EXCLUDED.source) > {s}.source_rank(b.source))
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
        async with self._pool.acquire() as conn:
            await conn.execute(migration_sql(self._schema))

    async def write(self, items: Sequence[tuple[Bar, Source]]) -> int:
        """Upsert a batch in one transaction; return the number of rows inserted or changed."""
        rows = [
            (b.symbol, b.tf, b.ts, b.open, b.high, b.low, b.close, b.volume, b.vwap,
             b.transactions, source)
            for b, source in collapse(items)
        ]  # fmt: skip
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
