"""A simulated session's trades as raw ticks, and the session's bars as the exchange serves them.

The ticks are the simulator's trades of 2024-01-16, in the order they were
reported (late trades after later ones, as a live feed delivers them); the
expected bars are what the simulator's REST API serves for that session, which
folds the same trades, and the minute bars of its WebSocket's ``AM`` events.
The next session's trades close the 16th's windows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from chronox_stream.contracts.ticks import Tick
from chronox_stream.settings import Settings
from chronox_stream.sim.feed import feed_events
from chronox_stream.sim.market import LATE_WINDOW_NS, Market, Trade, day_columns
from tests.fixtures.sim import SIM_SEED
from tests.integration.helpers import fetch_rows, ms, rest_aggregates

SESSION, NEXT_SESSION = date(2024, 1, 16), date(2024, 1, 17)
SESSION_START = datetime(2024, 1, 16, 5, 0, tzinfo=UTC)  # midnight in New York
NEXT_MIDNIGHT = datetime(2024, 1, 17, 5, 0, tzinfo=UTC)
SPANS = {"1m": "1/minute", "5m": "5/minute", "1d": "1/day"}
#: Worker settings: the timeframes compared, and a late limit above the session's latest trade.
TICK_WORKER = {"tick_timeframes": "1m,5m,1d", "tick_late_limit_ms": 20 * 60_000}

BarKey = tuple[str, str, datetime]


def as_ticks(trades: Iterable[Trade]) -> list[Tick]:
    """The simulator's trades as raw ticks, in the same order."""
    return [Tick(symbol=t.symbol, ts=t.sip_ns // 1_000_000, price=t.price, size=t.size,
                 conditions=t.conditions, exchange=t.exchange, trade_id=t.trade_id,
                 sequence=t.sequence) for t in trades]  # fmt: skip


def reported_ticks(symbols: Iterable[str], day: date) -> list[Tick]:
    out = []
    for symbol in symbols:
        trades = sorted(day_columns(SIM_SEED, symbol, day).trades(), key=lambda t: t.report_ns)
        out.extend(as_ticks(trades))
    return out


async def produce_ticks(producer: AIOKafkaProducer, settings: Settings, ticks: list[Tick]) -> None:
    topic = settings.topic("ticks.raw")
    for tick in ticks:
        await producer.send(topic, tick.to_json(), key=tick.symbol.encode())
    await producer.flush()


async def expected_session_bars(sim: Any, symbols: Iterable[str]) -> dict[BarKey, tuple[Any, ...]]:
    out = {}
    first, last = ms(SESSION.isoformat()), ms(NEXT_SESSION.isoformat(), end_of_day=True)
    for symbol in symbols:
        for tf, span in SPANS.items():
            for agg in await rest_aggregates(sim.rest_url, sim.api_key, symbol,
                                             f"{span}/{first}/{last}"):  # fmt: skip
                ts = datetime.fromtimestamp(agg["t"] / 1000, tz=UTC)
                if SESSION_START <= ts < NEXT_MIDNIGHT:
                    out[(symbol, tf, ts)] = (agg["o"], agg["h"], agg["l"], agg["c"], agg["v"],
                                             agg["vw"], agg["n"])  # fmt: skip
    return out


def final_minute_events(symbols: Iterable[str]) -> dict[BarKey, tuple[Any, ...]]:
    """The session's minute bars as the simulator's WebSocket ends them: the last ``AM``
    event of each minute (a late trade re-sends its minute's, corrected), as o, h, l, c,
    v, vw (``AM`` carries no trade count)."""
    after = int(SESSION_START.timestamp()) * 1_000_000_000
    upto = int(NEXT_MIDNIGHT.timestamp()) * 1_000_000_000 + 2 * LATE_WINDOW_NS
    out = {}
    for symbol in symbols:
        for timed in feed_events(Market(SIM_SEED), symbol, frozenset({"AM"}), after, upto, True):
            event = timed.event
            ts = datetime.fromtimestamp(event["s"] / 1000, tz=UTC)
            if ts < NEXT_MIDNIGHT:  # in due order: a correction replaces the earlier event
                out[(symbol, "1m", ts)] = (event["o"], event["h"], event["l"], event["c"],
                                           event["v"], event["vw"])  # fmt: skip
    return out


async def session_bars(settings: Settings) -> dict[BarKey, tuple[Any, ...]]:
    """The session's rows in PostgreSQL; they must all come from the stream."""
    rows = await fetch_rows(
        settings,
        "SELECT symbol, tf, ts, open, high, low, close, volume, vwap, transactions, source "
        "FROM {schema}.bars WHERE ts >= $1 AND ts < $2",
        SESSION_START,
        NEXT_MIDNIGHT,
    )
    assert {r["source"] for r in rows} <= {"stream"}
    return {(r["symbol"], r["tf"], r["ts"]): (r["open"], r["high"], r["low"], r["close"],
                                              r["volume"], r["vwap"], r["transactions"])
            for r in rows}  # fmt: skip


async def settled_session_bars(settings: Settings, want: int) -> dict[BarKey, Any] | None:
    """The session's rows once there are ``want`` and a second passed without change."""
    first = await session_bars(settings)
    if len(first) < want:
        return None
    await asyncio.sleep(1)
    second = await session_bars(settings)
    return second if second == first else None
