"""The simulated market's trades (pure): every trade is a function of (seed, symbol, minute).

Each minute draws from its own ``random.Random`` seeded with a BLAKE2b digest of
``seed|symbol|minute`` (never Python's salted ``hash``), so any minute can be
generated alone, in any order, in any process, with the same result. Only
minutes inside a session of the NYSE calendar trade: 0-3 trades in an
extended-hours minute, 2-25 in a regular one, and some minutes none at all.

Prices follow a smooth path (a symbol-specific base price times a sum of slow
sine waves of time) plus a little per-trade noise, in whole cents. Sizes are
1-500 shares; trades under 100 shares carry the odd-lot condition 37. About
one trade in ten carries a rarer sale condition that excludes it from parts of
a bar (see :mod:`chronox_stream.sim.conditions`).

A few trades are *reported late*: ``report_ns`` lies up to 15 minutes after the
end of their minute, while ``sip_ns`` (what bars are bucketed by) stays inside
it. Only the WebSocket feed cares, and only when the late-trades knob is on.

The sequence number ``q`` is the report time in microseconds since New York
midnight: on-time trades sit on even microseconds, late ones on odd ones, so
``q`` increases in report order per symbol and day, with gaps.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from hashlib import blake2b

from chronox_stream.sim.conditions import ODD_LOT
from chronox_stream.sim.sessions import (
    NS_PER_MIN,
    NS_PER_S,
    ny_date,
    ny_midnight_ns,
    trading_day,
)

LATE_WINDOW_NS = 15 * NS_PER_MIN
LATE_SHARE = 0.03
#: Exchange ids (Polygon's numbering) with weights; 4 is a FINRA trade reporting facility.
_EXCHANGES = (4, 12, 11, 10, 8, 19, 15, 21, 7, 17)
_EXCHANGE_CUM_WEIGHTS = (35, 53, 63, 71, 79, 86, 91, 96, 98, 100)
_TRF_IDS = (201, 202, 203)
#: Rare conditions, each drawn with equal odds when a trade gets one.
_RARE_CONDITIONS = (2, 7, 12, 15, 16, 38, 33, 5, 10, 22, 29, 52, 53)
#: Sine waves of the log price: (amplitude, period in seconds).
_WAVES = ((0.002, 2_400.0), (0.006, 12_000.0), (0.015, 150_000.0), (0.04, 950_000.0),
          (0.08, 5_300_000.0))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Trade:
    """One consolidated trade; times are epoch nanoseconds, the price is in whole cents."""

    symbol: str
    sip_ns: int
    participant_ns: int
    report_ns: int
    cents: int
    size: int
    conditions: tuple[int, ...]
    exchange: int
    trade_id: str
    sequence: int
    tape: int
    trf_id: int | None = None
    trf_ns: int | None = None

    @property
    def price(self) -> float:
        return self.cents / 100

    @property
    def late(self) -> bool:
        return self.report_ns != self.sip_ns


def _digest(*parts: object) -> int:
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(blake2b(text, digest_size=16).digest(), "big")


@dataclass(frozen=True, slots=True)
class _Path:
    base: float
    waves: tuple[tuple[float, float, float], ...]  # amplitude, angular speed per ns, phase

    def fair(self, ns: int) -> float:
        return self.base * math.exp(sum(a * math.sin(w * ns + p) for a, w, p in self.waves))


@lru_cache(maxsize=1024)
def _path(seed: int, symbol: str) -> _Path:
    rng = random.Random(_digest(seed, symbol, "path"))
    base = 20.0 + rng.uniform(0.0, 480.0)
    waves = tuple(
        (
            amp,
            2 * math.pi / (period * rng.uniform(0.8, 1.25) * NS_PER_S),
            rng.uniform(0, 2 * math.pi),
        )
        for amp, period in _WAVES
    )
    return _Path(base, waves)


@lru_cache(maxsize=1024)
def tape_of(symbol: str) -> int:
    """Tape of a symbol (1 NYSE, 2 NYSE American/Arca, 3 Nasdaq), fixed by its name."""
    return (1, 3, 3, 2)[_digest(symbol, "tape") % 4]


def fair_price(seed: int, symbol: str, ns: int) -> float:
    """The noise-free price path at ``ns``: continuous, deterministic, always positive."""
    return _path(seed, symbol).fair(ns)


def _below(rng: random.Random, n: int) -> int:
    """A uniform integer in ``[0, n)``; cheaper than ``randrange`` and as deterministic."""
    return int(rng.random() * n)


def _weighted(rng: random.Random, values: tuple[int, ...], cum_weights: tuple[int, ...]) -> int:
    roll = rng.random() * cum_weights[-1]
    return values[bisect_right(cum_weights, roll)]


def _count(rng: random.Random, regular: bool) -> int:
    if regular:
        return 0 if rng.random() < 0.06 else 2 + _below(rng, 24)
    return _weighted(rng, (0, 1, 2, 3), (45, 70, 88, 100))


def _size(rng: random.Random) -> int:
    if rng.random() < 0.25:
        return 1 + _below(rng, 99)
    return 100 * (1 + _below(rng, 5)) if rng.random() < 0.6 else 100 + _below(rng, 401)


def _conditions(rng: random.Random, size: int) -> tuple[int, ...]:
    roll = rng.random()
    found: list[int] = []
    if roll < 0.15:
        found.append(14)
    elif roll < 0.25:
        found.append(0)
    elif roll >= 0.90:
        found.append(_RARE_CONDITIONS[_below(rng, len(_RARE_CONDITIONS))])
    if size < 100:
        found.append(ODD_LOT)
    return tuple(sorted(set(found)))


@lru_cache(maxsize=65_536)
def minute_trades(seed: int, symbol: str, minute_ns: int) -> tuple[Trade, ...]:
    """The trades whose SIP time falls in the minute starting at ``minute_ns``, in time order."""
    if minute_ns % NS_PER_MIN:
        raise ValueError(f"{minute_ns} is not the start of a minute")
    session = trading_day(ny_date(minute_ns))
    phase = "closed" if session is None else session.phase(minute_ns)
    if phase == "closed":
        return ()
    rng = random.Random(_digest(seed, symbol, minute_ns))
    count = _count(rng, phase == "regular")
    if count == 0:
        return ()
    midnight = ny_midnight_ns(ny_date(minute_ns))
    path = _path(seed, symbol)
    fair_start, fair_end = path.fair(minute_ns), path.fair(minute_ns + NS_PER_MIN)
    offsets_us = sorted(2 * u for u in rng.sample(range(30_000_000), count))
    trades = []
    for k, offset_us in enumerate(offsets_us):
        sip_ns = minute_ns + offset_us * 1000 + _below(rng, 1000)
        fair = fair_start + (fair_end - fair_start) * offset_us / 60_000_000
        noise = (rng.random() + rng.random() + rng.random() - 1.5) * 0.0008
        cents = max(1, round(fair * (1 + noise) * 100))
        size = _size(rng)
        conditions = _conditions(rng, size)
        exchange = _weighted(rng, _EXCHANGES, _EXCHANGE_CUM_WEIGHTS)
        late = rng.random() < LATE_SHARE
        report_ns = sip_ns
        if late:
            delay_us = 2 * _below(rng, LATE_WINDOW_NS // 2000) + 1
            report_ns = minute_ns + NS_PER_MIN + delay_us * 1000
        trf = exchange == 4
        trades.append(
            Trade(
                symbol=symbol,
                sip_ns=sip_ns,
                participant_ns=sip_ns - 20_000 - _below(rng, 1_980_000),
                report_ns=report_ns,
                cents=cents,
                size=size,
                conditions=conditions,
                exchange=exchange,
                trade_id=str(minute_ns // NS_PER_MIN * 64 + k),
                sequence=(report_ns - midnight) // 1000,
                tape=tape_of(symbol),
                trf_id=_TRF_IDS[_below(rng, len(_TRF_IDS))] if trf else None,
                trf_ns=sip_ns - 10_000 - _below(rng, 490_000) if trf else None,
            )
        )
    return tuple(trades)


@lru_cache(maxsize=512)
def day_trades(seed: int, symbol: str, day: date) -> tuple[Trade, ...]:
    """Every trade of ``day`` (New York date), in SIP time order; empty on non-trading days."""
    session = trading_day(day)
    if session is None:
        return ()
    minutes = range(session.pre_open_ns, session.post_close_ns, NS_PER_MIN)
    return tuple(t for m in minutes for t in minute_trades(seed, symbol, m))


@dataclass(frozen=True, slots=True)
class Market:
    """The market of one seed: the only entry point the servers use for trades."""

    seed: int

    def minute(self, symbol: str, minute_ns: int) -> tuple[Trade, ...]:
        return minute_trades(self.seed, symbol, minute_ns)

    def day(self, symbol: str, day: date) -> tuple[Trade, ...]:
        return day_trades(self.seed, symbol, day)

    def between(self, symbol: str, start_ns: int, end_ns: int) -> list[Trade]:
        """Trades with ``start_ns <= sip_ns < end_ns``, in time order."""
        if end_ns <= start_ns:
            return []
        first = start_ns - start_ns % NS_PER_MIN
        found = []
        for minute_ns in range(first, end_ns, NS_PER_MIN):
            found.extend(t for t in self.minute(symbol, minute_ns) if start_ns <= t.sip_ns < end_ns)
        return found
