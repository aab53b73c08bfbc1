"""Corporate actions of the simulated market (pure): stock splits and their price factors.

A split is Polygon's record: ``ticker``, ``execution_date`` (the first New
York trading date at the new share count) and the ratio ``split_from`` to
``split_to`` (a 4-for-1 split is 1 to 4). The simulated price path is the
post-split one; every trade of a day before the execution date is priced
``split_to / split_from`` times higher, so the unadjusted series (trades,
flat files, the WebSocket, ``adjusted=false``) jumps by the ratio at the
split, as a real one does. Share sizes are not changed.

The factor of a (symbol, day) is the product, in execution-date order, of the
ratios of that symbol's splits executed after the day; the adjusted REST bars
divide prices by it and multiply volume by it (``chronox_stream.domain.splits``
defines the same product for PostgreSQL, so the two agree to the last bit).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

#: The default market's split: inside the days the tests' simulator serves (see tests/fixtures).
DEFAULT_SPLITS_SPEC = ("NVDA:2024-01-12:1:4",)
_TICKER = re.compile(r"[A-Z]{1,6}(?:[.-][A-Z]{1,2})?")


@dataclass(frozen=True, slots=True)
class Split:
    """One split: from ``execution_date`` on, ``split_from`` old shares are ``split_to`` new."""

    ticker: str
    execution_date: date
    split_from: float
    split_to: float

    def __post_init__(self) -> None:
        if not _TICKER.fullmatch(self.ticker):
            raise ValueError(f"{self.ticker!r} is not a ticker")
        for name in ("split_from", "split_to"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, not {value!r}")
            object.__setattr__(self, name, value)

    @property
    def ratio(self) -> float:
        """How many times higher a pre-split price is than the post-split one."""
        return self.split_to / self.split_from

    def json(self) -> dict[str, object]:
        """The admin view (``/_sim/info``): ticker, execution date (ISO), from, to."""
        return {
            "ticker": self.ticker,
            "execution_date": self.execution_date.isoformat(),
            "split_from": _number(self.split_from),
            "split_to": _number(self.split_to),
        }


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def parse_split(spec: str) -> Split:
    """``SYMBOL:YYYY-MM-DD:FROM:TO`` (e.g. ``NVDA:2024-01-12:1:4``); ``ValueError`` says why."""
    parts = spec.split(":")
    if len(parts) != 4:
        raise ValueError(f"{spec!r} is not SYMBOL:YYYY-MM-DD:FROM:TO")
    ticker, day, split_from, split_to = parts
    try:
        execution_date = date.fromisoformat(day)
        ratio_from, ratio_to = float(split_from), float(split_to)
    except ValueError:
        raise ValueError(f"{spec!r} is not SYMBOL:YYYY-MM-DD:FROM:TO") from None
    return Split(ticker.strip().upper(), execution_date, ratio_from, ratio_to)


def price_factor(
    splits: Iterable[Split], symbol: str, day: date, *, executed_by: date | None = None
) -> float:
    """Product of the ratios of ``symbol``'s splits executed after ``day`` (1.0: none).

    With ``executed_by``, only splits executed on or before that date count (what
    an adjusted series knows as of that date).
    """
    factor = 1.0
    for split in sorted(splits, key=lambda s: s.execution_date):
        if split.ticker != symbol or split.execution_date <= day:
            continue
        if executed_by is not None and split.execution_date > executed_by:
            continue
        factor *= split.ratio
    return factor
