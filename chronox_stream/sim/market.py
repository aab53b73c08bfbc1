"""The simulated market's trades (pure): every trade is a function of (seed, symbol, minute).

Randomness is counter-based: draw ``j`` of minute ``m`` is SplitMix64 of
``key(seed, symbol) + m * C1 + j * C2`` (the key is a BLAKE2b digest, never
Python's salted ``hash``). So any minute can be generated alone, in any order,
in any process, vectorised over a whole day with numpy, and always gives the
same trades. Only minutes inside a session of the NYSE calendar trade: 0-3
trades in an extended-hours minute, 2-25 in a regular one, some minutes none.

Prices follow a smooth path (a symbol-specific base price times a sum of slow
sine waves of time, evaluated with ``math`` once per minute boundary and
interpolated) plus a little per-trade noise, in whole cents. Sizes are 1-500
shares; trades under 100 shares carry the odd-lot condition 37. Trades carry
14 (intermarket sweep) or 0 (regular) now and then, and about one in ten a
rarer condition that keeps it out of parts of a bar (2, 5, 7, 10, 12, 15, 16,
22, 29, 33, 38, 52, 53; see :mod:`chronox_stream.domain.conditions`).

About 3% of trades are *reported late*: ``report_ns`` lies up to 15 minutes
after the end of their minute while ``sip_ns`` (what bars are bucketed by)
stays inside it. With the late-trades knob on, no interface shows a trade
before its report time: the WebSocket sends it then, and REST includes it in
its bars from then on (:mod:`chronox_stream.sim.history`).

The sequence number ``q`` is the report time in microseconds since New York
midnight: on-time trades sit on even microseconds (distinct within a minute),
late ones on odd ones, so ``q`` increases in report order, with gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from datetime import date
from functools import lru_cache
from hashlib import blake2b

import numpy as np
import numpy.typing as npt

from chronox_stream.domain.conditions import ODD_LOT
from chronox_stream.sim.corporate import Split, price_factor
from chronox_stream.sim.sessions import (
    NS_PER_MIN,
    NS_PER_S,
    TradingDay,
    ny_date,
    ny_midnight_ns,
    trading_day,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]

LATE_WINDOW_NS = 15 * NS_PER_MIN
LATE_SHARE = 0.03
MAX_PER_MINUTE = 25
_DRAWS_PER_TRADE = 16
_C_MINUTE = np.uint64(0xD1B54A32D192ED03)
_C_DRAW = np.uint64(0x9E3779B97F4A7C15)
#: Exchange ids (Polygon's numbering) with cumulative weights; 4 is a FINRA TRF.
_EXCHANGES = np.array([4, 12, 11, 10, 8, 19, 15, 21, 7, 17], dtype=np.int64)
_EXCHANGE_CUM = np.array([35, 53, 63, 71, 79, 86, 91, 96, 98, 100]) / 100
_TRF_IDS = np.array([201, 202, 203], dtype=np.int64)
_RARE_CONDITIONS = np.array([2, 7, 12, 15, 16, 38, 33, 5, 10, 22, 29, 52, 53], dtype=np.int64)
_EXTENDED_COUNT_CUM = np.array([0.45, 0.70, 0.88])
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


@dataclass(frozen=True, slots=True, eq=False)
class Columns:
    """Trades of one symbol as numpy columns, in SIP time order (what bars are folded from).

    ``condition`` is the one sale condition besides the odd lot (-1: none);
    ``odd_lot`` says whether 37 applies; ``trf_id``/``trf_ns`` are 0 off a TRF.
    """

    symbol: str
    sip_ns: I64
    participant_ns: I64
    report_ns: I64
    cents: I64
    size: I64
    condition: I64
    odd_lot: npt.NDArray[np.bool_]
    exchange: I64
    trade_id: I64
    sequence: I64
    trf_id: I64
    trf_ns: I64

    def __len__(self) -> int:
        return len(self.sip_ns)

    def select(self, keep: npt.NDArray[np.bool_]) -> Columns:
        """The trades where ``keep`` holds, still in SIP time order."""
        return Columns(
            symbol=self.symbol,
            **{f.name: getattr(self, f.name)[keep] for f in fields(self) if f.name != "symbol"},
        )

    def trades(self) -> tuple[Trade, ...]:
        tape = tape_of(self.symbol)
        rows = zip(
            self.sip_ns.tolist(), self.participant_ns.tolist(), self.report_ns.tolist(),
            self.cents.tolist(), self.size.tolist(), self.condition.tolist(),
            self.odd_lot.tolist(), self.exchange.tolist(), self.trade_id.tolist(),
            self.sequence.tolist(), self.trf_id.tolist(), self.trf_ns.tolist(), strict=True,
        )  # fmt: skip
        return tuple(
            Trade(
                symbol=self.symbol,
                sip_ns=sip,
                participant_ns=participant,
                report_ns=report,
                cents=cents,
                size=size,
                conditions=_conditions(condition, odd),
                exchange=exchange,
                trade_id=str(trade_id),
                sequence=sequence,
                tape=tape,
                trf_id=trf_id or None,
                trf_ns=trf_ns or None,
            )
            for sip, participant, report, cents, size, condition, odd, exchange, trade_id,
            sequence, trf_id, trf_ns in rows
        )  # fmt: skip


def _conditions(condition: int, odd_lot: bool) -> tuple[int, ...]:
    found = {condition} if condition >= 0 else set()
    if odd_lot:
        found.add(ODD_LOT)
    return tuple(sorted(found))


def _digest(*parts: object) -> int:
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(blake2b(text, digest_size=8).digest(), "big")


@lru_cache(maxsize=1024)
def tape_of(symbol: str) -> int:
    """Tape of a symbol (1 NYSE, 2 NYSE American/Arca, 3 Nasdaq), fixed by its name."""
    return (1, 3, 3, 2)[_digest(symbol, "tape") % 4]


@dataclass(frozen=True, slots=True)
class _Path:
    """The noise-free price path of a symbol: continuous, deterministic, always positive."""

    base: float
    waves: tuple[tuple[float, float, float], ...]  # amplitude, angular speed per ns, phase

    def fair(self, ns: int) -> float:
        return self.base * math.exp(sum(a * math.sin(w * ns + p) for a, w, p in self.waves))


def _scalar_uniform(key: int, j: int) -> float:
    x = (key + j * int(_C_DRAW)) % 2**64
    return float(_splitmix(np.array([x], dtype=np.uint64))[0] >> np.uint64(11)) * 2.0**-53


@lru_cache(maxsize=1024)
def _path(seed: int, symbol: str) -> _Path:
    key = _digest(seed, symbol, "path")
    base = 20.0 + 480.0 * _scalar_uniform(key, 0)
    waves = tuple(
        (
            amp,
            2 * math.pi / (period * (0.8 + 0.45 * _scalar_uniform(key, 1 + 2 * i)) * NS_PER_S),
            2 * math.pi * _scalar_uniform(key, 2 + 2 * i),
        )
        for i, (amp, period) in enumerate(_WAVES)
    )
    return _Path(base, waves)


def _splitmix(x: U64) -> U64:
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(key: int, minute_index: I64, draw: I64) -> F64:
    """Uniform [0, 1) draws number ``draw`` of minutes ``minute_index`` (elementwise)."""
    minutes, draws = minute_index.astype(np.uint64), draw.astype(np.uint64)
    x = np.uint64(key) + minutes * _C_MINUTE + draws * _C_DRAW
    return (_splitmix(x) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _counts(key: int, minute_index: I64, regular: npt.NDArray[np.bool_]) -> I64:
    u = _uniform(key, minute_index, np.zeros_like(minute_index))
    busy = np.where(u < 0.06, 0, 2 + np.floor((u - 0.06) / 0.94 * 24)).astype(np.int64)
    quiet = np.searchsorted(_EXTENDED_COUNT_CUM, u, side="right").astype(np.int64)
    return np.where(regular, np.minimum(busy, MAX_PER_MINUTE), quiet)


def _generate(seed: int, symbol: str, session: TradingDay, minutes: I64) -> Columns:
    """The trades of ``minutes`` (ascending minute starts inside ``session``) of one symbol."""
    key = _digest(seed, symbol)
    minute_index = minutes // NS_PER_MIN
    regular = (minutes >= session.open_ns) & (minutes < session.close_ns)
    counts = _counts(key, minute_index, regular)
    owner = np.repeat(np.arange(len(minutes)), counts)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    m_index, m_start = minute_index[owner], minutes[owner]

    def draw(j: int) -> F64:
        return _uniform(key, m_index, 1 + rank * _DRAWS_PER_TRADE + j)

    # Offsets: drawn per trade, sorted per minute, nudged apart, doubled (even microseconds).
    raw = np.floor(draw(0) * 29_999_000).astype(np.int64)
    raw = raw[np.lexsort((raw, owner))]
    lifted = owner * (1 << 32) + raw - rank
    offset_us = 2 * (np.maximum.accumulate(lifted) - owner * (1 << 32) + rank)
    sip = m_start + offset_us * 1000 + np.floor(draw(1) * 1000).astype(np.int64)

    path = _path(seed, symbol)
    fair_start = np.array([path.fair(m) for m in minutes.tolist()])[owner]
    fair_end = np.array([path.fair(m + NS_PER_MIN) for m in minutes.tolist()])[owner]
    fair = fair_start + (fair_end - fair_start) * (offset_us / 60_000_000)
    noise = (draw(2) + draw(3) + draw(4) - 1.5) * 0.0008
    cents = np.maximum(1, np.rint(fair * (1 + noise) * 100)).astype(np.int64)

    odd = draw(5) < 0.25
    lot = draw(7)
    size = np.where(
        odd,
        1 + np.floor(lot * 99),
        np.where(draw(6) < 0.6, 100 * (1 + np.floor(lot * 5)), 100 + np.floor(lot * 401)),
    ).astype(np.int64)

    roll = draw(8)
    rare = _RARE_CONDITIONS[np.floor(draw(9) * len(_RARE_CONDITIONS)).astype(np.int64)]
    condition = np.where(roll < 0.15, 14, np.where(roll < 0.25, 0, np.where(roll >= 0.9, rare, -1)))
    exchange = _EXCHANGES[np.searchsorted(_EXCHANGE_CUM, draw(10), side="right")]

    late = draw(11) < LATE_SHARE
    delay_us = 2 * np.floor(draw(12) * (LATE_WINDOW_NS // 2000)).astype(np.int64) + 1
    report = np.where(late, m_start + NS_PER_MIN + delay_us * 1000, sip)
    trf = exchange == 4
    return Columns(
        symbol=symbol,
        sip_ns=sip,
        participant_ns=sip - 20_000 - np.floor(draw(13) * 1_980_000).astype(np.int64),
        report_ns=report,
        cents=cents,
        size=size,
        condition=condition.astype(np.int64),
        odd_lot=size < 100,
        exchange=exchange,
        trade_id=m_index * 64 + rank,
        sequence=(report - ny_midnight_ns(session.day)) // 1000,
        trf_id=np.where(trf, _TRF_IDS[np.floor(draw(14) * 3).astype(np.int64)], 0),
        trf_ns=np.where(trf, sip - 10_000 - np.floor(draw(15) * 490_000).astype(np.int64), 0),
    )


_NO_SESSION = TradingDay(date(1970, 1, 1), 0, 0, 0, 0)


@lru_cache(maxsize=128)
def day_columns(seed: int, symbol: str, day: date) -> Columns:
    """Every trade of ``day`` (New York date) as columns; empty on non-trading days."""
    session = trading_day(day)
    if session is None:
        return _generate(seed, symbol, _NO_SESSION, np.zeros(0, dtype=np.int64))
    minutes = np.arange(session.pre_open_ns, session.post_close_ns, NS_PER_MIN, dtype=np.int64)
    return _generate(seed, symbol, session, minutes)


def minute_columns(seed: int, symbol: str, minute_ns: int) -> Columns:
    """The trades of the one minute starting at ``minute_ns``: same as in :func:`day_columns`."""
    if minute_ns % NS_PER_MIN:
        raise ValueError(f"{minute_ns} is not the start of a minute")
    session = trading_day(ny_date(minute_ns))
    if session is None or session.phase(minute_ns) == "closed":
        return _generate(seed, symbol, _NO_SESSION, np.zeros(0, dtype=np.int64))
    return _generate(seed, symbol, session, np.array([minute_ns], dtype=np.int64))


@lru_cache(maxsize=128)
def _priced_columns(seed: int, symbol: str, day: date, factor: float) -> Columns:
    """:func:`day_columns` with prices ``factor`` times higher (a day before a split)."""
    return _scaled(day_columns(seed, symbol, day), factor)


@lru_cache(maxsize=32)
def day_trades(seed: int, symbol: str, day: date, factor: float = 1.0) -> tuple[Trade, ...]:
    """Every trade of ``day`` as records, in SIP time order, prices ``factor`` times higher."""
    return _scaled(day_columns(seed, symbol, day), factor).trades()


def _scaled(cols: Columns, factor: float) -> Columns:
    if factor == 1.0:
        return cols
    return replace(cols, cents=np.maximum(1, np.rint(cols.cents * factor)).astype(np.int64))


@dataclass(frozen=True, slots=True)
class Market:
    """The market of one seed and its splits: the only entry point the servers use for trades.

    Trades are unadjusted: a day before one of ``splits`` of its symbol is priced
    at the pre-split level (see :mod:`chronox_stream.sim.corporate`).
    """

    seed: int
    splits: tuple[Split, ...] = ()

    def factor(self, symbol: str, day: date) -> float:
        """How many times the day's prices stand above the post-split path (1.0: no split)."""
        return price_factor(self.splits, symbol, day)

    def columns(self, symbol: str, day: date) -> Columns:
        return _priced_columns(self.seed, symbol, day, self.factor(symbol, day))

    def day(self, symbol: str, day: date) -> tuple[Trade, ...]:
        return day_trades(self.seed, symbol, day, self.factor(symbol, day))

    def minute(self, symbol: str, minute_ns: int) -> tuple[Trade, ...]:
        factor = self.factor(symbol, ny_date(minute_ns))
        return _scaled(minute_columns(self.seed, symbol, minute_ns), factor).trades()
