"""``/v3/reference/splits`` (pure): the market's splits filtered, sorted and paged as Polygon does.

Query: ``ticker`` and ``execution_date`` with their ``.gt``/``.gte``/``.lt``/
``.lte`` forms, ``reverse_split`` (``true``: only splits to fewer shares),
``sort`` (``execution_date`` default, or ``ticker``), ``order`` (``asc``
default, or ``desc``) and ``limit`` (default 10, at most 1000). A page that
leaves splits over links the next by ``next_url`` with an opaque ``cursor``
(the query and the offset, never the key). Every split the market knows is
listed, executed or announced; each result is ``{id, execution_date,
split_from, split_to, ticker}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from hashlib import blake2b
from typing import Any

from chronox_stream.sim.corporate import Split

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "": lambda a, b: a == b,
    ".gt": lambda a, b: a > b,
    ".gte": lambda a, b: a >= b,
    ".lt": lambda a, b: a < b,
    ".lte": lambda a, b: a <= b,
}

#: The query parameters a page and its cursor carry (anything else, e.g. ``apiKey``, is dropped).
QUERY_NAMES = frozenset(
    {f"{name}{suffix}" for name in ("ticker", "execution_date") for suffix in _COMPARISONS}
    | {"reverse_split", "sort", "order", "limit", "offset"}
)


class BadQuery(ValueError):
    """A query Polygon would answer with 400; the message is safe to return."""


@dataclass(frozen=True, slots=True)
class SplitsPage:
    results: list[dict[str, Any]]
    next_params: dict[str, str] | None


def split_id(split: Split) -> str:
    """A stable id in Polygon's shape (``E`` and 64 hex digits)."""
    text = f"{split.ticker}|{split.execution_date.isoformat()}|{split.split_from}|{split.split_to}"
    return "E" + blake2b(text.encode(), digest_size=32).hexdigest()


def split_result(split: Split) -> dict[str, Any]:
    return {"id": split_id(split), **split.json()}


def _day(raw: str, name: str) -> date:
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"Invalid {name}: expected YYYY-MM-DD") from None


def _test(
    compare: Callable[[Any, Any], bool], field: Callable[[Split], Any], bound: Any
) -> Callable[[Split], bool]:
    return lambda split: compare(field(split), bound)


def _filters(params: Mapping[str, str]) -> list[Callable[[Split], bool]]:
    tests: list[Callable[[Split], bool]] = []
    for suffix, compare in _COMPARISONS.items():
        if (ticker := params.get(f"ticker{suffix}")) is not None:
            tests.append(_test(compare, lambda s: s.ticker, ticker))
        if (raw := params.get(f"execution_date{suffix}")) is not None:
            day = _day(raw, f"execution_date{suffix}")
            tests.append(_test(compare, lambda s: s.execution_date, day))
    reverse = params.get("reverse_split")
    if reverse is not None:
        if reverse not in ("true", "false"):
            raise BadQuery("Invalid reverse_split: must be true or false")
        wanted = reverse == "true"
        tests.append(lambda s: (s.split_from > s.split_to) == wanted)
    return tests


def _limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadQuery(f"Invalid limit: must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def list_splits(splits: Sequence[Split], params: Mapping[str, str]) -> SplitsPage:
    """One page of ``params`` (including the ``offset`` a cursor carries)."""
    params = {k: v for k, v in params.items() if k in QUERY_NAMES}
    sort, order = params.get("sort", "execution_date"), params.get("order", "asc")
    if sort not in ("execution_date", "ticker"):
        raise BadQuery("Invalid sort: must be execution_date or ticker")
    if order not in ("asc", "desc"):
        raise BadQuery("Invalid order: must be asc or desc")
    limit = _limit(params)
    offset_raw = params.get("offset", "0")
    if not offset_raw.isdigit():
        raise BadQuery("Invalid cursor")
    offset = int(offset_raw)
    tests = _filters(params)
    kept = [s for s in splits if all(test(s) for test in tests)]
    if sort == "ticker":
        kept.sort(key=lambda s: (s.ticker, s.execution_date), reverse=order == "desc")
    else:
        kept.sort(key=lambda s: (s.execution_date, s.ticker), reverse=order == "desc")
    page = kept[offset : offset + limit]
    more = offset + limit < len(kept)
    next_params = {**params, "offset": str(offset + limit)} if more else None
    return SplitsPage([split_result(s) for s in page], next_params)
