"""PostgreSQL bar store: schema migration and idempotent batched upserts (asyncpg).

A batch is COPYed into a temporary table and merged with one
``INSERT ... ON CONFLICT`` that applies the precedence rule of
``chronox_stream.domain.precedence`` in SQL, so replaying a batch changes no row, a
lower-ranked source never overwrites a higher one, and a bar that only adds
vwap or transactions fills them in without counting as a revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from chronox_stream.domain.bars import SOURCE_RANK, Bar, Source
from chronox_stream.domain.precedence import collapse
from chronox_stream.domain.splits import SplitRecord, splits_ddl, upsert_splits_sql
from chronox_stream.sinks.base import SinkRecord

COLUMNS = (
    "symbol", "tf", "ts", "open", "high", "low", "close", "volume", "vwap", "transactions",
    "source",
)  # fmt: skip
OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
FEATURE_COLUMNS = ("vwap", "transactions")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def migration_sql(schema: str) -> str:
    """DDL that creates (idempotently) the schema, the bars table, the rank function, and the
    splits table with the split-adjusted read path
    (:func:`~chronox_stream.domain.splits.splits_ddl`).

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
    """The merge of ``bars_in`` into the table: :func:`~chronox_stream.domain.precedence.merge`
    in SQL.

    A correction (OHLCV differ, or a field both rows have) from a rank at least as high
    replaces the row and bumps ``revision``; an enrichment (a field the row lacks) from a
    rank at least as high fills it (``COALESCE``), and a same or poorer bar from a higher
    rank takes over the source, neither bumping ``revision``. Anything else changes nothing.
    """
    s = _quote(schema)
    cols = ", ".join(COLUMNS)
    old = ", ".join(f"b.{c}" for c in OHLCV_COLUMNS)
    new = ", ".join(f"EXCLUDED.{c}" for c in OHLCV_COLUMNS)
    corrected = " OR ".join(
        [f"({old}) IS DISTINCT FROM ({new})",
         *(f"COALESCE(b.{c} <> EXCLUDED.{c}, false)" for c in FEATURE_COLUMNS)]
    )  # fmt: skip
    adds = " OR ".join(f"(b.{c} IS NULL AND EXCLUDED.{c} IS NOT NULL)" for c in FEATURE_COLUMNS)
    rank_new, rank_old = f"{s}.source_rank(EXCLUDED.source)", f"{s}.source_rank(b.source)"
    fills = ", ".join(
        f"{c} = CASE WHEN {corrected} THEN EXCLUDED.{c} ELSE COALESCE(b.{c}, EXCLUDED.{c}) END"
        for c in FEATURE_COLUMNS
    )
    return f"""
INSERT INTO {s}.bars AS b ({cols})
SELECT {cols} FROM bars_in
ON CONFLICT (symbol, tf, ts) DO UPDATE
SET {", ".join(f"{c} = EXCLUDED.{c}" for c in OHLCV_COLUMNS)}, {fills},
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
