"""Stock splits (pure): Polygon's ``/v3/reference/splits`` records, their PostgreSQL table and
the split-adjusted read path.

Bars are stored unadjusted (raw at rest); a split is kept as Polygon sends it
and applied on read. The factor of a bar is the product, in execution-date
order, of ``split_to / split_from`` over its symbol's splits executed after
the bar's New York trading date and by today's New York date; adjusted prices
(open, high, low, close, vwap) are divided by it, the volume multiplied by it
(``transactions`` is unchanged). The simulator applies the same product
(``chronox_stream.sim.corporate.price_factor``), in the same order, so its
``adjusted=true`` bars and ``<schema>.bars_adjusted`` agree to the last bit.
The factor lives in SQL (:func:`splits_ddl`): the view is the read path.

Records come from outside and are checked one by one: a ticker by the
request's rule, ``execution_date`` as ``YYYY-MM-DD``, ``split_from`` and
``split_to`` positive finite numbers. A record that breaks a rule is skipped
with a reason (the caller counts and logs them); a body that is no page at
all is :class:`~chronox_stream.sources.polygon_pages.MalformedPage`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from chronox_stream.contracts.control import is_symbol
from chronox_stream.sources.polygon_pages import MalformedPage

_DATE_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class SplitRecord:
    """One split: from ``execution_date`` on, ``split_from`` old shares are ``split_to`` new."""

    symbol: str
    execution_date: date
    split_from: float
    split_to: float


@dataclass(frozen=True, slots=True)
class SplitsPage:
    """One page of ``/v3/reference/splits``: valid records, reasons of skipped ones, next link."""

    records: list[SplitRecord]
    skipped: list[str]
    next_url: str | None


def _ratio_part(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def parse_split_record(row: object) -> SplitRecord | str:
    """The record, or why it is skipped (never the offending value: it may be anything)."""
    if not isinstance(row, dict):
        return "not an object"
    symbol = row.get("ticker")
    if not is_symbol(symbol):
        return "ticker is not a ticker"
    raw_date = row.get("execution_date")
    if not isinstance(raw_date, str) or not _DATE_FORM.fullmatch(raw_date):
        return "execution_date is not YYYY-MM-DD"
    try:
        execution_date = date.fromisoformat(raw_date)
    except ValueError:
        return "execution_date is not a date"
    split_from, split_to = _ratio_part(row.get("split_from")), _ratio_part(row.get("split_to"))
    if split_from is None or split_to is None:
        return "split_from and split_to must be positive finite numbers"
    return SplitRecord(symbol, execution_date, split_from, split_to)


def parse_splits_page(symbol: str, raw: bytes) -> SplitsPage:
    """The records of a body asked for ``symbol``; a record of another ticker is skipped."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedPage("body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedPage("body is not a JSON object")
    rows = body.get("results")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise MalformedPage("results is not a list")
    next_url = body.get("next_url")
    if next_url is not None and not isinstance(next_url, str):
        raise MalformedPage("next_url is not a string")
    records, skipped = [], []
    for i, row in enumerate(rows):
        parsed = parse_split_record(row)
        if isinstance(parsed, str):
            skipped.append(f"results[{i}]: {parsed}")
        elif parsed.symbol != symbol:
            skipped.append(f"results[{i}]: another ticker than asked for")
        else:
            records.append(parsed)
    return SplitsPage(records, skipped, next_url or None)


def due_symbols(
    symbols: Iterable[str],
    refreshed: Mapping[str, float],
    backfilled: Mapping[str, float],
    now: float,
    interval_s: float,
) -> list[str]:
    """Symbols whose splits to fetch now: never fetched, fetched ``interval_s`` ago or more,
    or backfilled since (times are seconds on one clock)."""
    due = []
    for symbol in sorted(set(symbols)):
        last = refreshed.get(symbol)
        if last is None or now - last >= interval_s or backfilled.get(symbol, -math.inf) > last:
            due.append(symbol)
    return due


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def splits_ddl(schema: str) -> str:
    """Idempotent DDL: the splits table, the factor, the adjusted view and function.

    Runs inside the sink's migration, after the bars table exists.
    """
    s = _quote(schema)
    positive = "CHECK ({0} > 0 AND {0} < 'Infinity'::double precision)"
    prices = ", ".join(f"b.{c} / f.factor AS {c}" for c in ("open", "high", "low", "close"))
    return f"""
CREATE TABLE IF NOT EXISTS {s}.splits (
    symbol         text             NOT NULL,
    execution_date date             NOT NULL,
    split_from     double precision NOT NULL {positive.format("split_from")},
    split_to       double precision NOT NULL {positive.format("split_to")},
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, execution_date)
);
CREATE OR REPLACE AGGREGATE {s}.ratio_product(double precision) (
    SFUNC = float8mul, STYPE = double precision, INITCOND = '1'
);
CREATE OR REPLACE FUNCTION {s}.split_factor(p_symbol text, p_day date)
    RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT {s}.ratio_product(split_to / split_from ORDER BY execution_date)
    FROM {s}.splits
    WHERE symbol = p_symbol AND execution_date > p_day
      AND execution_date <= (now() AT TIME ZONE 'America/New_York')::date
$$;
CREATE OR REPLACE VIEW {s}.bars_adjusted AS
SELECT b.symbol, b.tf, b.ts, {prices}, b.volume * f.factor AS volume,
       b.vwap / f.factor AS vwap, b.transactions, b.source, b.revision, b.updated_at,
       f.factor AS split_factor
FROM {s}.bars AS b
CROSS JOIN LATERAL (
    SELECT {s}.split_factor(b.symbol, (b.ts AT TIME ZONE 'America/New_York')::date) AS factor
) AS f;
CREATE OR REPLACE FUNCTION {s}.adjusted_bars(
    p_symbol text, p_tf text, p_start timestamptz, p_end timestamptz
) RETURNS SETOF {s}.bars_adjusted LANGUAGE sql STABLE AS $$
    SELECT * FROM {s}.bars_adjusted
    WHERE symbol = p_symbol AND tf = p_tf AND ts >= p_start AND ts < p_end
    ORDER BY ts
$$;
"""


def upsert_splits_sql(schema: str) -> str:
    """Insert or update one split (``$1``..``$4``); an identical row is left alone."""
    s = _quote(schema)
    return f"""
INSERT INTO {s}.splits AS t (symbol, execution_date, split_from, split_to)
VALUES ($1, $2, $3, $4)
ON CONFLICT (symbol, execution_date) DO UPDATE
SET split_from = EXCLUDED.split_from, split_to = EXCLUDED.split_to, updated_at = now()
WHERE (t.split_from, t.split_to) IS DISTINCT FROM (EXCLUDED.split_from, EXCLUDED.split_to)
"""
