"""Bar timeframes and their Polygon aggregate parameters (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Timespan = Literal["minute", "hour", "day"]


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A supported bar width: its short name and how Polygon asks for it."""

    name: str
    multiplier: int
    timespan: Timespan
    seconds: int


TIMEFRAMES: dict[str, Timeframe] = {
    tf.name: tf
    for tf in (
        Timeframe("1m", 1, "minute", 60),
        Timeframe("5m", 5, "minute", 300),
        Timeframe("15m", 15, "minute", 900),
        Timeframe("30m", 30, "minute", 1800),
        Timeframe("1h", 1, "hour", 3600),
        Timeframe("1d", 1, "day", 86400),
    )
}
