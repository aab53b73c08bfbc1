"""Stream bars are complete or not emitted: a live run joined mid-minute stores only whole bars.

The simulator's clock stands still at 10:00:35 New York while the worker's leader
subscribes, then runs at 30x (a minute every two seconds). The minute and the five
minutes in progress at the subscription hold only part of their trades on the
WebSocket, and trades of earlier minutes reported late arrive alone: none of them
may reach a bar topic as a stream bar. After the windows close and the refills are
done, every bar PostgreSQL holds equals the simulator's REST bar, and every stream
bar ever put on a bar topic is one the WebSocket's trades could make whole: the
window's on-time trades and the late ones reported up to some moment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from chronox_stream.client.ingest import send_request
from chronox_stream.runtime.names import stream_state_key
from chronox_stream.runtime.topics import read_to_end
from chronox_stream.settings import Settings
from chronox_stream.sim.aggregate import Agg, fold, merge
from chronox_stream.sim.market import Market, Trade
from tests.fixtures.sim import SimFactory, SimServer
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, rest_aggregates

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(420)]

SYMBOLS = ("AAPL", "MSFT", "NVDA")
SUBSCRIBED = datetime(2024, 1, 17, 15, 0, 35, tzinfo=UTC)  # 10:00:35 New York
SPEED = 30
WIDTHS = {"1m": 1, "5m": 5}
CUT = datetime(2024, 1, 17, 15, 10, tzinfo=UTC)  # windows compared: those ending by then
#: Before the oldest window refilled: the subscription's, less the late limit.
EARLIEST = datetime(2024, 1, 17, 14, 35, tzinfo=UTC)
LATE_MS = 20 * 60_000  # above the simulator's latest report (15 minutes after the minute)
RECONNECT_AT = datetime(2024, 1, 17, 15, 4, 20, tzinfo=UTC)  # mid-minute

Values = tuple[float, ...]


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def _values(bar: Agg) -> Values:
    return (bar.open, bar.high, bar.low, bar.close, float(bar.volume))


async def rest_truth(sim: SimServer) -> dict[tuple[str, str, datetime], Values]:
    """The simulator's REST bars of the compared span, per symbol, timeframe and start."""
    first, last = int(EARLIEST.timestamp() * 1000), int(CUT.timestamp() * 1000) - 1
    out: dict[tuple[str, str, datetime], Values] = {}
    for symbol in SYMBOLS:
        for tf, width in WIDTHS.items():
            for b in await rest_aggregates(sim.rest_url, sim.api_key, symbol,
                                           f"{width}/minute/{first}/{last}"):  # fmt: skip
                ts = datetime.fromtimestamp(b["t"] / 1000, tz=UTC)
                out[(symbol, tf, ts)] = (b["o"], b["h"], b["l"], b["c"], float(b["v"]))
    return out


async def stored(settings: Settings) -> dict[tuple[str, str, datetime], Values]:
    rows = await fetch_rows(
        settings,
        "SELECT symbol, tf, ts, open, high, low, close, volume FROM {schema}.bars "
        "WHERE ts < $1",
        CUT,
    )
    return {(r["symbol"], r["tf"], r["ts"]): tuple(float(r[k]) for k in
            ("open", "high", "low", "close", "volume")) for r in rows}  # fmt: skip


def whole_bars(trades: Iterable[Trade], start: datetime, width: int, late: bool) -> set[Values]:
    """Every bar the window's trades make as the feed delivers them: its on-time trades
    and its late ones reported up to some moment (one bar per moment a late one comes)."""
    window = sorted(trades, key=lambda t: t.sip_ns)
    reported = sorted((t for t in window if t.late), key=lambda t: t.report_ns) if late else []
    on_time = [t for t in window if not t.late] if late else window
    out = set()
    for k in range(len(reported) + 1):
        known = sorted([*on_time, *reported[:k]], key=lambda t: (t.sip_ns, t.sequence))
        minutes = []
        for m in range(width):
            begin = _ns(start + timedelta(minutes=m))
            bar = fold([t for t in known if begin <= t.sip_ns < begin + 60 * 10**9],
                       begin, begin + 60 * 10**9)  # fmt: skip
            if bar is not None:
                minutes.append(bar)
        if minutes:
            out.add(_values(merge(minutes, _ns(start), _ns(start) + width * 60 * 10**9)))
    return out


async def stream_envelopes(settings: Settings) -> list[dict[str, Any]]:
    """Every envelope of source ``stream`` ever put on the compared bar topics."""
    out = []
    for tf in WIDTHS:
        for record in await read_to_end(settings, settings.topic(f"bars.{tf}")):
            doc = orjson.loads(record.value)
            if doc["source"] == "stream":
                out.append(doc)
    return out


async def streaming(settings: Settings) -> bool:
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    try:
        raw = await client.get(stream_state_key(settings.redis_prefix))
    finally:
        await client.aclose()
    state = orjson.loads(raw) if raw else {}
    return bool(state.get("connected")) and state.get("symbols") == sorted(SYMBOLS)


async def sim_now(market: SimServer) -> datetime:
    return datetime.fromtimestamp((await market.clock())["now_ns"] / 1e9, tz=UTC)


async def wait_for_sim(market: SimServer, moment: datetime) -> None:
    while await sim_now(market) < moment:
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("case", ["mid-minute", "late-trades", "reconnect"])
async def test_stream_bars_are_whole_or_not_emitted(
    case: str, settings: Settings, start_worker: WorkerFactory, sim_factory: SimFactory
) -> None:
    market = await sim_factory(clock_start=SUBSCRIBED.isoformat(), speed=0, flatfiles=False)
    late = case != "mid-minute"
    await market.set_knobs(late_trades=late)
    overrides = {"polygon_rest_url": market.rest_url, "polygon_ws_url": market.ws_url,
                 "polygon_api_key": market.api_key, "tick_timeframes": ",".join(WIDTHS),
                 "tick_late_limit_ms": LATE_MS}  # fmt: skip
    live = settings.with_overrides(**overrides)
    start_worker(**overrides)
    await send_request(live, {"request_id": f"live-{uuid.uuid4().hex[:8]}",
                              "symbols": list(SYMBOLS), "strategy": "stream"})  # fmt: skip
    assert await poll(lambda: streaming(live), timeout_s=60), "the leader did not subscribe"
    await asyncio.sleep(1)  # the subscriptions reach the server while its clock stands still
    await market.set_clock(speed=SPEED)

    sim_market = Market(market.seed)
    minutes = {(s, m): sim_market.minute(s, _ns(EARLIEST + timedelta(minutes=m)))
               for s in SYMBOLS for m in range(int((CUT - EARLIEST).total_seconds() // 60))}
    if late:
        before = [t for trades in minutes.values() for t in trades
                  if t.sip_ns < _ns(SUBSCRIBED) <= t.report_ns]  # fmt: skip
        assert before, "the market has trades of earlier minutes reported after the subscription"
    if case == "reconnect":
        await wait_for_sim(market, RECONNECT_AT)
        assert await market.disconnect_ws() == 1, "one connection: the leader's"

    await wait_for_sim(market, CUT + timedelta(minutes=17))  # every late trade is reported
    truth = await rest_truth(market)

    joined = {k for k in truth if k[2] >= SUBSCRIBED.replace(second=0)}

    async def converged() -> bool:
        ours = await stored(live)
        return joined <= set(ours) and all(ours[k] == truth.get(k) for k in ours)

    converges = await poll(converged, timeout_s=120)
    ours = await stored(live)
    wrong = sorted((k, ours[k], truth.get(k)) for k in ours if ours[k] != truth.get(k))
    assert converges, f"missing {sorted(joined - set(ours))[:5]}, wrong {wrong[:5]}"
    if late:
        assert [k for k in ours if k[2] < SUBSCRIBED.replace(second=0)], (
            "late trades of minutes before the subscription were refilled from REST"
        )

    envelopes = await stream_envelopes(live)
    assert envelopes, "the stream emitted bars"
    for doc in envelopes:
        start = datetime.fromisoformat(doc["ts"])
        if start >= CUT:
            continue
        width = WIDTHS[doc["tf"]]
        assert start > SUBSCRIBED, f"a stream bar of a window joined halfway: {doc['dedup_key']}"
        trades = [t for m in range(width)
                  for t in minutes[(doc["symbol"], int((start - EARLIEST).total_seconds() // 60)
                                    + m)]]  # fmt: skip
        ohlcv = doc["ohlcv"]
        got = tuple(float(ohlcv[k]) for k in ("open", "high", "low", "close", "volume"))
        assert got in whole_bars(trades, start, width, late), (
            f"a partial stream bar reached the bar topic: {doc['dedup_key']} {got}"
        )
