"""One query of stored bars: its validation (pure) and its read from PostgreSQL.

Bars are raw at rest (README "Split adjustment: raw at rest"); an adjusted query reads
the ``<schema>.bars_adjusted`` view the migration creates, so the split rule lives in one
place (``domain.splits``). Every input comes from outside (a command line, a URL) and is
checked here with the rules of requests: symbols as ``contracts.control.is_symbol``, a
known timeframe, bounds as ``parse_time_bound`` reads them (a date is a New York trading
date, an ``end`` date inclusive, an instant exclusive), ``start`` before ``end``. A query
never returns more than ``CHRONOX_READ_MAX_ROWS`` bars: one that would is refused
(``out_of_range``) rather than cut short, so a script never takes a part for the whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from chronox_stream.client.reach import masked_url
from chronox_stream.contracts.control import EARLIEST, MAX_SYMBOLS, is_symbol, parse_time_bound
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.settings import Settings

#: The columns of a raw bar, in the order every format gives them.
COLUMNS = ("symbol", "tf", "ts", "open", "high", "low", "close", "volume", "vwap",
           "transactions", "source", "revision")  # fmt: skip
#: An adjusted bar's extra column: the factor its prices were divided by.
ADJUSTED_COLUMNS = (*COLUMNS, "split_factor")


@dataclass(frozen=True, slots=True)
class BarQuery:
    """Bars of ``symbols`` and ``tf`` with ``start <= ts < end``, in (symbol, ts) order;
    with ``latest``, only the newest ``latest`` of them (then in (ts, symbol) order)."""

    symbols: tuple[str, ...]
    tf: str
    start: datetime
    end: datetime
    adjusted: bool = False
    latest: int | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return ADJUSTED_COLUMNS if self.adjusted else COLUMNS


def parse_query(
    symbols: Iterable[str],
    tf: str,
    start: str | None,
    end: str | None,
    *,
    now: datetime,
    adjusted: bool = False,
    latest: int | None = None,
    max_rows: int,
) -> BarQuery:
    """The validated query; ``Rejected`` with a reason and a message otherwise. A missing
    ``start`` is the epoch, a missing ``end`` is ``now``."""
    names = tuple(dict.fromkeys(symbols))
    if not names or len(names) > MAX_SYMBOLS:
        raise Rejected("invalid_symbol", f"give 1 to {MAX_SYMBOLS} symbols")
    for name in names:
        if not is_symbol(name):
            raise Rejected("invalid_symbol", f"{name[:20]!r} is not a ticker (e.g. AAPL, BRK.B)")
    if tf not in TIMEFRAMES:
        raise Rejected("invalid_timeframe", f"tf must be one of {', '.join(TIMEFRAMES)}")
    first = EARLIEST if start is None else parse_time_bound(start, "start", end_of_day=False)
    last = now if end is None else parse_time_bound(end, "end", end_of_day=True)
    if first >= last:
        raise Rejected("invalid_range", "start must be before end")
    if latest is not None and not 1 <= latest <= max_rows:
        raise Rejected("out_of_range", f"limit must be from 1 to {max_rows}")
    return BarQuery(names, tf, first, last, adjusted, latest)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def query_sql(schema: str, query: BarQuery) -> str:
    """The statement for ``query``: ``$1`` symbols, ``$2`` tf, ``$3`` start, ``$4`` end,
    ``$5`` the row limit."""
    relation = "bars_adjusted" if query.adjusted else "bars"
    order = "ts DESC, symbol DESC" if query.latest is not None else "symbol, ts"
    return (
        f"SELECT {', '.join(query.columns)} FROM {_quote(schema)}.{relation} "
        "WHERE symbol = ANY($1::text[]) AND tf = $2 AND ts >= $3 AND ts < $4 "
        f"ORDER BY {order} LIMIT $5"
    )


class StoreUnavailable(Exception):
    """PostgreSQL could not answer; the message names where it was looked for, with the
    DSN's password masked (``chronox bars`` exits with PostgreSQL's code: 4)."""


class BarReader:
    """Reads bars from ``<schema>.bars`` (or its adjusted view) over a small pool."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._schema = settings.postgres_schema
        self._max_rows = settings.read_max_rows
        self._where = masked_url(settings.postgres_dsn.get_secret_value())

    @classmethod
    async def connect(cls, settings: Settings) -> BarReader:
        """A reader with its pool open; ``StoreUnavailable`` when PostgreSQL does not answer."""
        where = masked_url(settings.postgres_dsn.get_secret_value())
        try:
            pool = await asyncpg.create_pool(
                settings.postgres_dsn.get_secret_value(), min_size=1, max_size=4,
                timeout=settings.postgres_timeout_s, command_timeout=settings.postgres_timeout_s,
            )  # fmt: skip
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StoreUnavailable(
                f"PostgreSQL at {where} is unreachable ({type(error).__name__})"
            ) from None
        return cls(pool, settings)

    async def bars(self, query: BarQuery) -> list[dict[str, Any]]:
        """The query's rows as dicts of :attr:`BarQuery.columns`; ``Rejected("out_of_range")``
        when there are more than ``CHRONOX_READ_MAX_ROWS``."""
        limit = query.latest if query.latest is not None else self._max_rows + 1
        try:
            rows = await self._pool.fetch(
                query_sql(self._schema, query), list(query.symbols), query.tf, query.start,
                query.end, limit,
            )  # fmt: skip
        except asyncpg.UndefinedTableError:
            raise StoreUnavailable(
                f"PostgreSQL at {self._where} has no bars in schema {self._schema!r} "
                "(check CHRONOX_POSTGRES_SCHEMA, or run `chronox db migrate`)"
            ) from None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StoreUnavailable(
                f"PostgreSQL at {self._where} failed the read ({type(error).__name__})"
            ) from None
        if len(rows) > self._max_rows:
            raise Rejected(
                "out_of_range",
                f"more than {self._max_rows} bars (CHRONOX_READ_MAX_ROWS): narrow the range",
            )
        out = [dict(row) for row in rows]
        return out[::-1] if query.latest is not None else out

    async def close(self) -> None:
        await self._pool.close()


async def read_bars(settings: Settings, query: BarQuery) -> list[dict[str, Any]]:
    """The bars of ``query`` over a connection of its own (``chronox bars``: one read)."""
    reader = await BarReader.connect(settings)
    try:
        return await reader.bars(query)
    finally:
        await reader.close()
