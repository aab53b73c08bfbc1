"""Reference check: every stored 1m and 1d bar equals the simulator's trades, folded here.

The market: 20 symbols over 10 trading days, 2023-11-20 to 2023-12-04 (Thanksgiving
closed, the day after it closing early at 13:00), seed 7, and one split: NVDA 3-for-2,
executed 2023-11-27, so NVDA's trades before it are priced 1.5 times higher (unadjusted,
as traded). Three pipelines, each with its own worker, topics, consumer group and
PostgreSQL schema, since coverage is kept per app and a source never refetches what
another already covered:

- **flatpack** backfills the first six days (1m and 1d) from the day files;
- **api** backfills the last seven (1m and 1d) from REST, so both ran 11-24 to 11-28;
- **stream** follows three symbols live on a second simulator with the same seed,
  subscribed at 03:58 New York on 12-04 (no trade in flight, none reported late) and
  run at 600x until 10:17, when every late trade of the minutes up to 10:00 is in.

The reference does not use the project's folds (``tick_bars``, ``resample``) nor the
simulator's (``sim.aggregate``): the simulator's market (its trade generator, with the
split's pre-split prices) gives the tape, what Polygon's trades endpoint or ``trades_v1``
file would, and pandas folds it by
Polygon's published rules (FORMATS.md, "Trade conditions in bars"; Polygon's
knowledge base "How does Polygon create the OHLCV aggregate bars?"): a bar exists when
a trade may set open/close; open/close are the first/last such trade in SIP time,
high/low the extremes of the trades that may set them, volume and ``transactions`` the
sizes and count of the trades that count in volume, ``vwap`` their volume-weighted
price to four decimals. Minute windows are aligned to the epoch; a day bar covers the
New York day from midnight (its ``t``), extended hours included, as Polygon's daily
aggregates do.

Every stored bar must equal its reference bar, unadjusted in ``<schema>.bars`` and
split-adjusted in ``<schema>.bars_adjusted``; the adjusted reference is the unadjusted one
with prices and vwap divided, and volume multiplied, by the split's ratio for the days
before its execution date (from the split the simulator reports in ``/_sim/info``). The
simulator's own ``adjusted=true`` aggregates of the split symbol must equal it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.client.children import Child
from chronox_stream.client.status import stream_state
from chronox_stream.settings import Settings
from chronox_stream.sim.corporate import Split
from chronox_stream.sim.market import Market
from tests.fixtures.sim import SIM_SEED, SimFactory, SimServer
from tests.integration.conftest import isolated
from tests.integration.helpers import fetch_rows, poll, rest_aggregates, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

NEW_YORK = ZoneInfo("America/New_York")
SYMBOLS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "AMD", "INTC", "NFLX",
    "ORCL", "IBM", "CSCO", "ADBE", "CRM", "QCOM", "TXN", "AVGO", "PYPL", "UBER",
)  # fmt: skip
DAYS = tuple(
    date.fromisoformat(d)
    for d in ("2023-11-20", "2023-11-21", "2023-11-22", "2023-11-24", "2023-11-27",
              "2023-11-28", "2023-11-29", "2023-11-30", "2023-12-01", "2023-12-04")
)  # fmt: skip
FLATPACK_DAYS, API_DAYS = DAYS[:6], DAYS[3:]
SHARED_DAYS = tuple(d for d in FLATPACK_DAYS if d in API_DAYS)
#: The split: 3-for-2 on the Monday after Thanksgiving, a day flatpack and api share.
SPLIT = "NVDA:2023-11-27:2:3"
#: A week after the last day: every day is final, its files published, REST settled.
HISTORY_CLOCK = "2023-12-11T15:00:00Z"

STREAM_SYMBOLS = ("AAPL", "NVDA", "TSLA")
STREAM_SPEED = 600.0
STREAM_FROM = datetime(2023, 12, 4, 4, 0, tzinfo=NEW_YORK)  # the pre-market opens
STREAM_TO = datetime(2023, 12, 4, 10, 0, tzinfo=NEW_YORK)  # compared: [STREAM_FROM, STREAM_TO)
#: Late trades are reported up to 15 minutes after their minute: 10:17 settles 09:59.
STREAM_STOP = STREAM_TO + timedelta(minutes=17)
STREAM_CLOCK = STREAM_FROM - timedelta(minutes=2)
#: The stream worker: minute bars, and a late limit beyond the latest report.
STREAM_WORKER = {"tick_timeframes": "1m", "tick_late_limit_ms": 20 * 60_000}

# FORMATS.md, "Trade conditions in bars" (Polygon's update_rules.consolidated).
NO_HIGH_LOW = frozenset({2, 7, 12, 13, 15, 16, 20, 21, 37, 52, 53})
NO_OPEN_CLOSE = NO_HIGH_LOW | {5, 10, 22, 29, 33}
NO_VOLUME = frozenset({15, 16, 38})
ODD_LOT = 37
NS_PER_MIN = 60_000_000_000

PRICES = ("open", "high", "low", "close")
KEY = ["symbol", "tf", "ts"]


# -- the reference: the tape, folded with pandas -------------------------------------------


def tape(market: Market, symbols: Iterable[str], days: Iterable[date]) -> pd.DataFrame:
    """Every trade of ``symbols`` on ``days`` as traded (unadjusted): symbol, SIP time,
    sequence, price in cents, size, its sale condition (-1: none) and odd-lot flag."""
    frames = []
    for symbol in symbols:
        for day in days:
            cols = market.columns(symbol, day)
            frames.append(
                pd.DataFrame(
                    {
                        "symbol": symbol,
                        "sip_ns": cols.sip_ns,
                        "sequence": cols.sequence,
                        "cents": cols.cents,
                        "size": cols.size,
                        "sale_condition": cols.condition,
                        "odd_lot": cols.odd_lot,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def condition_codes(trades: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per (trade, SIP condition code); an odd lot carries 37."""
    sale = trades.loc[trades["sale_condition"] >= 0, ["sale_condition"]]
    sale = sale.rename(columns={"sale_condition": "code"})
    odd = pd.DataFrame({"code": ODD_LOT}, index=trades.index[trades["odd_lot"].to_numpy()])
    return pd.concat([sale, odd])


def eligibility(trades: pd.DataFrame) -> pd.DataFrame:
    """Per trade: may it set open/close, high/low, and does it count in volume?"""
    codes = condition_codes(trades)

    def allowed(excluded: frozenset[int]) -> Any:
        barred = codes.index[codes["code"].isin(list(excluded)).to_numpy()]
        return ~trades.index.isin(barred)

    return trades.assign(
        sets_open_close=allowed(NO_OPEN_CLOSE),
        sets_high_low=allowed(NO_HIGH_LOW),
        counts_volume=allowed(NO_VOLUME),
    )


def fold(trades: pd.DataFrame, window: pd.Series) -> pd.DataFrame:
    """Bars of ``trades`` grouped by symbol and ``window`` (each trade's window start)."""
    ordered = trades.assign(ts=window).sort_values(["symbol", "sip_ns", "sequence"], kind="stable")
    groups = ["symbol", "ts"]
    last = ordered[ordered["sets_open_close"]].groupby(groups)["cents"].agg(["first", "last"])
    extremes = ordered[ordered["sets_high_low"]].groupby(groups)["cents"].agg(["max", "min"])
    counted = ordered[ordered["counts_volume"]]
    volume = counted.assign(notional=counted["cents"] * counted["size"]).groupby(groups).agg(
        volume=("size", "sum"), transactions=("size", "size"), notional=("notional", "sum")
    )
    bars = last.join(extremes, how="left").join(volume, how="left").reset_index()
    bars[["volume", "transactions", "notional"]] = (
        bars[["volume", "transactions", "notional"]].fillna(0).astype("int64")
    )
    out = pd.DataFrame(
        {
            "symbol": bars["symbol"],
            "ts": bars["ts"],
            "open": bars["first"] / 100,
            "high": bars["max"] / 100,
            "low": bars["min"] / 100,
            "close": bars["last"] / 100,
            "volume": bars["volume"].astype("float64"),
            "transactions": bars["transactions"],
        }
    )
    vwap = [
        round(notional / (100 * volume), 4) if volume else close
        for notional, volume, close in zip(
            bars["notional"].tolist(), bars["volume"].tolist(), out["close"].tolist(), strict=True
        )
    ]
    return out.assign(vwap=vwap)


def reference_bars(market: Market, symbols: Sequence[str], days: Sequence[date]) -> pd.DataFrame:
    """The 1m and 1d bars of ``symbols`` on ``days``, keyed by symbol, tf and ts (UTC)."""
    trades = eligibility(tape(market, symbols, days))
    sip = pd.to_datetime(trades["sip_ns"], utc=True)
    minute = pd.to_datetime(trades["sip_ns"] // NS_PER_MIN * NS_PER_MIN, utc=True)
    ny_midnight = sip.dt.tz_convert(NEW_YORK).dt.normalize().dt.tz_convert(UTC)
    return pd.concat(
        [fold(trades, minute).assign(tf="1m"), fold(trades, ny_midnight).assign(tf="1d")],
        ignore_index=True,
    )


def adjusted(bars: pd.DataFrame, splits: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """``bars`` split-adjusted: a bar before a split's execution date (New York) has its
    prices and vwap divided, and its volume multiplied, by ``split_to / split_from``."""
    factor = np.ones(len(bars))
    ny_day = bars["ts"].dt.tz_convert(NEW_YORK).dt.date.to_numpy()
    for split in splits:
        before = (bars["symbol"] == split["ticker"]).to_numpy() & (
            ny_day < date.fromisoformat(split["execution_date"])
        )
        factor = np.where(before, factor * (split["split_to"] / split["split_from"]), factor)
    return bars.assign(
        **{name: bars[name] / factor for name in (*PRICES, "vwap")},
        volume=bars["volume"] * factor,
    )


# -- the pipelines ----------------------------------------------------------------------------

LaneFactory = Callable[..., Awaitable[list[Settings]]]


@pytest.fixture
async def lanes(stack: Settings, tmp_path: Path) -> AsyncIterator[LaneFactory]:
    """``await lanes((name, sim, worker overrides), ...)``: per lane, isolated settings and
    one running worker; workers stopped, topics and schemas dropped after the test."""
    opened: list[AsyncIterator[Settings]] = []
    workers: list[Child] = []

    async def open_lanes(*specs: tuple[str, SimServer, dict[str, Any]]) -> list[Settings]:
        found = []
        for name, server, overrides in specs:
            (tmp_path / name).mkdir()
            lane = isolated(stack, server, tmp_path / name)
            base = await anext(lane)
            opened.append(lane)
            own = base.with_overrides(**overrides)
            workers.append(Child.start(name, ["chronox_stream", "worker"], env=own.to_env(),
                                       log_path=tmp_path / f"{name}.log"))  # fmt: skip
            found.append(own)
        await asyncio.gather(
            *(asyncio.to_thread(w.wait_for_log, "Ready", timeout_s=120) for w in workers)
        )
        return found

    yield open_lanes
    for worker in workers:
        worker.stop()
    for lane in opened:
        await anext(lane, None)


async def request(settings: Settings, request_id: str, **fields: Any) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        body = {"request_id": request_id, "symbols": list(SYMBOLS), **fields}
        await producer.send_and_wait(
            settings.topic("control"), key=request_id.encode(), value=orjson.dumps(body)
        )
    finally:
        await producer.stop()


def ny_span(days: Sequence[date]) -> dict[str, str]:
    """``start``/``end`` of a request covering whole New York days (zoned timestamps)."""
    first = datetime.combine(days[0], datetime.min.time(), NEW_YORK)
    last = datetime.combine(days[-1], datetime.min.time(), NEW_YORK) + timedelta(days=1)
    return {"start": first.isoformat(), "end": (last - timedelta(seconds=1)).isoformat()}


def in_stream_window(bars: pd.DataFrame) -> pd.DataFrame:
    """The bars of the stream symbols in ``[STREAM_FROM, STREAM_TO)``."""
    keep = (bars["ts"] >= STREAM_FROM) & (bars["ts"] < STREAM_TO) & bars["symbol"].isin(
        STREAM_SYMBOLS
    )
    return bars[keep.to_numpy()]


def on_days(bars: pd.DataFrame, days: Iterable[date]) -> pd.DataFrame:
    """The bars whose New York date is one of ``days``."""
    ny_days = bars["ts"].dt.tz_convert(NEW_YORK).dt.date
    return bars[ny_days.isin(set(days)).to_numpy()]


def on_days_of(days: Iterable[date]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    kept = tuple(days)
    return lambda bars: on_days(bars, kept)


async def stored(settings: Settings, relation: str = "bars") -> pd.DataFrame:
    """The rows of ``<schema>.bars`` (or of the adjusted view ``bars_adjusted``)."""
    rows = await fetch_rows(
        settings,
        "SELECT symbol, tf, ts, open, high, low, close, volume, vwap, transactions, source "
        f"FROM {{schema}}.{relation}",
    )
    columns = [*KEY, *PRICES, "volume", "vwap", "transactions", "source"]
    frame = pd.DataFrame([dict(r) for r in rows], columns=columns)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


async def settled(
    settings: Settings, expected: int, where: Callable[[pd.DataFrame], pd.DataFrame] = lambda f: f
) -> pd.DataFrame:
    """The schema's bars (those ``where`` keeps) once there are ``expected`` of them, or
    what there is when the wait is over."""

    async def enough() -> tuple[pd.DataFrame] | None:
        frame = where(await stored(settings))
        return (frame,) if len(frame) >= expected else None

    found = await poll(enough, timeout_s=240)
    return found[0] if found is not None else where(await stored(settings))


async def recorded_splits(settings: Settings) -> list[dict[str, Any]]:
    """``<schema>.splits`` once the leader has fetched any, as ``/_sim/info`` lists them."""

    async def fetched() -> list[Any]:
        return await fetch_rows(
            settings, "SELECT symbol, execution_date, split_from, split_to FROM {schema}.splits"
        )

    rows = await poll(fetched, timeout_s=60)
    return [{"ticker": r["symbol"], "execution_date": r["execution_date"].isoformat(),
             "split_from": r["split_from"], "split_to": r["split_to"]} for r in rows]  # fmt: skip


async def rest_bars(server: SimServer, symbol: str, *, adjusted: bool) -> pd.DataFrame:
    """The simulator's 1m and 1d aggregates of ``symbol`` over ``DAYS``."""
    frames = []
    for tf, span in (("1m", "1/minute"), ("1d", "1/day")):
        tail = f"{span}/{DAYS[0].isoformat()}/{DAYS[-1].isoformat()}"
        results = await rest_aggregates(
            server.rest_url, server.api_key, symbol, tail, adjusted=adjusted
        )
        frame = pd.DataFrame(results).rename(columns={
            "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "vw": "vwap",
            "n": "transactions"})  # fmt: skip
        ts = pd.to_datetime(frame["t"], unit="ms", utc=True)
        frames.append(frame.assign(symbol=symbol, tf=tf, ts=ts))
    return pd.concat(frames, ignore_index=True)


def differences(
    ours: pd.DataFrame,
    truth: pd.DataFrame,
    fields: Sequence[str],
    *,
    label: str,
    rel: float = 0.0,
) -> list[str]:
    """What keeps ``ours`` from equal ``truth``, bar for bar, on ``fields`` (empty: equal),
    within a relative ``rel`` (0: exactly).

    A field missing (NULL) in ``ours`` is not compared: flat files carry no vwap."""
    merged = ours.merge(truth, on=KEY, how="outer", suffixes=("", "_ref"), indicator=True)
    problems = [
        f"{label}: {kind} {r.symbol} {r.tf} {r.ts.isoformat()}"
        for kind, side in (("extra", "left_only"), ("missing", "right_only"))
        for r in merged[merged["_merge"] == side].itertuples()
    ]
    both = merged[merged["_merge"] == "both"]
    for name in fields:
        mine, ref = both[name].astype("float64"), both[f"{name}_ref"].astype("float64")
        off = ~np.isclose(mine.to_numpy(), ref.to_numpy(), rtol=rel, atol=0.0)
        wrong = both[mine.notna().to_numpy() & off]
        problems.extend(
            f"{label}: {r.symbol} {r.tf} {r.ts.isoformat()} {name} "
            f"{getattr(r, name)} != {getattr(r, f'{name}_ref')}"
            for r in wrong.itertuples()
        )
    return problems


def expect_none(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems[:30])


async def run_stream(live: Settings, market: SimServer) -> None:
    """Subscribe the stream symbols, then run the market at 600x until ``STREAM_STOP``."""
    await request(live, "ref-stream", symbols=list(STREAM_SYMBOLS), strategy="stream")

    async def subscribed() -> bool:
        state = await stream_state(live)
        symbols = state.get("symbols") if state else None
        return bool(state and state.get("connected") and isinstance(symbols, list)
                    and set(STREAM_SYMBOLS) <= set(symbols))  # fmt: skip

    assert await poll(subscribed, timeout_s=90), "the leader did not subscribe the symbols"
    await market.set_clock(speed=STREAM_SPEED)
    stop_ns = int(STREAM_STOP.timestamp()) * 10**9

    async def past_stop() -> bool:
        return int((await market.clock())["now_ns"]) >= stop_ns

    assert await poll(past_stop, timeout_s=120), "the simulator's clock did not get there"
    await market.set_clock(speed=0)


@pytest.mark.long
async def test_every_stored_bar_equals_the_tape_folded_by_polygons_rules(
    sim_factory: SimFactory, lanes: LaneFactory
) -> None:
    history = await sim_factory(
        symbols=SYMBOLS, clock_start=HISTORY_CLOCK, speed=0,
        extra=("--flatfiles-from", FLATPACK_DAYS[0].isoformat(),
               "--flatfiles-to", FLATPACK_DAYS[-1].isoformat(), "--split", SPLIT),
    )  # fmt: skip
    market = await sim_factory(symbols=STREAM_SYMBOLS, clock_start=STREAM_CLOCK.isoformat(),
                               speed=0, flatfiles=False, extra=("--split", SPLIT))  # fmt: skip
    splits = (await history.info())["splits"]
    assert len(splits) == 1 and splits == (await market.info())["splits"]
    assert date.fromisoformat(splits[0]["execution_date"]) in SHARED_DAYS
    tape_of = Market(SIM_SEED, tuple(
        Split(s["ticker"], date.fromisoformat(s["execution_date"]), s["split_from"], s["split_to"])
        for s in splits))  # fmt: skip
    flat, api, live = await lanes(
        ("flatpack", history, {}),
        ("api", history, {}),
        ("stream", market, STREAM_WORKER),
    )  # fmt: skip
    for tf in ("1m", "1d"):
        await request(flat, f"ref-flatpack-{tf}", strategy="flatpack", timeframe=tf,
                      **ny_span(FLATPACK_DAYS))  # fmt: skip
        await request(api, f"ref-api-{tf}", strategy="api", timeframe=tf, **ny_span(API_DAYS))
    truth_task = asyncio.create_task(asyncio.to_thread(reference_bars, tape_of, SYMBOLS, DAYS))
    await run_stream(live, market)
    truth = await truth_task
    for settings, prefix in ((flat, "ref-flatpack"), (api, "ref-api")):
        for tf in ("1m", "1d"):
            events = await wait_finished(settings, f"{prefix}-{tf}", timeout_s=300)
            failed = [e for e in events if e["state"] == "failed"]
            assert not failed, failed

    everything = [*PRICES, "volume", "transactions", "vwap"]
    flat_truth, api_truth = on_days(truth, FLATPACK_DAYS), on_days(truth, API_DAYS)
    stream_truth = in_stream_window(truth[(truth["tf"] == "1m").to_numpy()])
    assert flat_truth["symbol"].nunique() == len(SYMBOLS) and set(flat_truth["tf"]) == {"1m", "1d"}
    assert len(stream_truth) > 300, "six hours of three symbols, pre-market and regular"

    flat_bars = await settled(flat, len(flat_truth))
    api_bars = await settled(api, len(api_truth))
    live_bars = await settled(live, len(stream_truth), in_stream_window)
    assert set(flat_bars["source"]) == {"flatpack"} and set(api_bars["source"]) == {"api"}
    from_ticks = live_bars["source"] == "stream"
    assert set(live_bars["source"]) <= {"stream", "api"} and from_ticks.mean() > 0.5, (
        "the stream's bars come from ticks (and from REST for windows before its feed was complete)"
    )
    assert flat_bars["vwap"].isna().all() and api_bars["vwap"].notna().all()
    expect_none(differences(flat_bars, flat_truth, everything, label="flatpack"))
    expect_none(differences(api_bars, api_truth, everything, label="api"))
    expect_none(differences(live_bars, stream_truth, everything, label="stream"))

    shared = [*PRICES, "volume", "transactions"]
    expect_none(differences(on_days(flat_bars, SHARED_DAYS), on_days(api_bars, SHARED_DAYS),
                            shared, label="flatpack vs api"))  # fmt: skip
    api_minutes = in_stream_window(api_bars[(api_bars["tf"] == "1m").to_numpy()])
    expect_none(differences(live_bars, api_minutes, everything, label="stream vs api"))

    symbol = splits[0]["ticker"]
    split_truth = truth[(truth["symbol"] == symbol).to_numpy()]
    for flag, expected in ((False, split_truth), (True, adjusted(split_truth, splits))):
        expect_none(differences(await rest_bars(history, symbol, adjusted=flag), expected,
                                everything, label=f"REST adjusted={flag}", rel=1e-12))  # fmt: skip
    for settings, lane_truth, label, where in (
        (live, stream_truth, "stream", in_stream_window),
        (flat, flat_truth, "flatpack", on_days_of(FLATPACK_DAYS)),
        (api, api_truth, "api", on_days_of(API_DAYS)),
    ):
        assert await recorded_splits(settings) == splits, (
            f"{label}: <schema>.splits lacks the split of the backfilled symbols"
        )
        ours = where(await stored(settings, "bars_adjusted"))
        expect_none(differences(ours, adjusted(lane_truth, splits), everything,
                                label=f"{label} adjusted", rel=1e-12))  # fmt: skip
