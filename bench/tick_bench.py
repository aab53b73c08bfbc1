"""Tick aggregation benchmark: raw ticks on Kafka -> one worker's 1m and 5m bars, with a baseline.

Runs against the local stack (``chronox stack up``). It produces the trades of
``--symbols`` symbols (in report order, as a feed sends them) to a fresh raw-ticks
topic. Three feeds (``--feed``):
  * ``market`` (the default, the target's feed): a market-wide feed, ``--symbols``
    (default 3,000, generated names) each trading ``--trades-per-minute`` (default 20)
    times a minute for ``MARKET_MINUTES`` minutes, seeded. A bar closes every ~20 ticks
    of a symbol, so the per-bar path (closing, state records, the ``ticks.bars`` hop,
    dedup, bar topics, Redis, PostgreSQL, all in the same process) weighs as much as
    the per-tick parsing;
  * ``dense``: ``DENSE_MINUTES`` minutes of ``--trades-per-minute`` (default 250)
    trades per symbol of ``--symbols`` (default 20) listed symbols, with seeded
    prices, sizes and SIP conditions (a third odd lots): a bar closes for every few
    hundred ticks;
  * ``session``: the simulator's whole session of ``--symbols`` (default 20) listed
    symbols, about 6 trades per symbol and minute (``--trades-per-minute 0`` picks it
    too).

Then it measures in the same run:
  * the raw baseline: an aiokafka consumer loop that decodes the same ticks and folds
    them into 1m and 5m OHLCV dicts (hand-written, no validation, no state, no output);
  * one ``chronox worker`` aggregating them into 1m and 5m bars: ticks/s between its
    tick consumer group's first commit and its commit of the last offset (the
    aggregator commits about once a second, after writing its state; the worker's
    start-up is left out), and its peak RSS;
  * the same OHLCV job on Quix Streams (``bench/quix_ohlcv.py``, a peer run in its own
    virtualenv ``.venv-bench``, made on first use with ``QUIX_REQUIREMENT``);
and prints the worker's ratio to the baseline (target: >= 0.50 on the market feed) and
to Quix.

    .venv/bin/python bench/tick_bench.py [--feed market] [--symbols N]
        [--trades-per-minute N] [--no-quix]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from throwaway import drop_run

from chronox_stream.client.children import Child
from chronox_stream.contracts.ticks import Tick
from chronox_stream.runtime.topics import ensure_topics, message_count
from chronox_stream.settings import Settings
from chronox_stream.sim.market import day_columns

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "NFLX", "INTC",
           "ORCL", "ADBE", "CRM", "QCOM", "AVGO", "CSCO", "PEP", "COST", "TXN", "SBUX"]  # fmt: skip
SESSION = date(2024, 1, 16)
QUIX_REQUIREMENT = "quixstreams==3.28.1"
BENCH_VENV = Path(__file__).resolve().parents[1] / ".venv-bench"
BASELINE_ROUNDS = 3
DENSE_MINUTES = 150  # 750,000 ticks of 20 symbols: 15 s or more, against commits once a second
MARKET_MINUTES = 12  # 720,000 ticks of 3,000 symbols at 20 a minute: 45,000 bars of 1m and 5m
#: Defaults per feed: symbols, trades per symbol and minute.
FEEDS = {"market": (3000, 20), "dense": (20, 250), "session": (20, 0)}
#: SIP conditions drawn for the dense feed, with weights: regular, intermarket sweep, and
#: three that keep a trade out of some of the bar's values. Odd lots (< 100 shares, a
#: third of the trades) also carry condition 37.
DENSE_CONDITIONS = [((), 80), ((14,), 17), ((12,), 1), ((15,), 1), ((22,), 1)]
ODD_LOTS = (1, 5, 10, 37, 50)


def session_ticks(symbols: list[str]) -> list[Tick]:
    ticks = []
    for symbol in symbols:
        for t in day_columns(7, symbol, SESSION).trades():
            tick = Tick(symbol=symbol, ts=t.sip_ns // 1_000_000, price=t.price, size=t.size,
                        conditions=t.conditions, exchange=t.exchange, trade_id=t.trade_id,
                        sequence=t.sequence)  # fmt: skip
            ticks.append((t.report_ns, tick))
    ticks.sort(key=lambda pair: pair[0])
    return [tick for _, tick in ticks]


def dense_ticks(symbols: list[str], per_minute: int) -> list[Tick]:
    """``DENSE_MINUTES`` of ``per_minute`` trades per symbol from the session's open, in the
    order a feed reports them (SIP time plus up to 20 ms of reporting delay)."""
    rng = random.Random(7)
    open_ms = int(datetime(SESSION.year, SESSION.month, SESSION.day, 14, 30, tzinfo=UTC)
                  .timestamp() * 1000)  # fmt: skip
    conditions, weights = zip(*DENSE_CONDITIONS, strict=True)
    reported: list[tuple[int, Tick]] = []
    for n, symbol in enumerate(symbols):
        price, sequence = 50.0 + 25 * n, 0
        for minute in range(DENSE_MINUTES):
            start = open_ms + minute * 60_000
            for ts in sorted(start + rng.randrange(60_000) for _ in range(per_minute)):
                price = max(1.0, round(price * (1 + rng.gauss(0, 0.0004)), 2))
                sequence += 1
                odd = rng.random() < 1 / 3
                size = rng.choice(ODD_LOTS) if odd else 100 * rng.randint(1, 20)
                tick = Tick(symbol=symbol, ts=ts, price=price, size=size,
                            conditions=rng.choices(conditions, weights)[0] + ((37,) if odd else ()),
                            exchange=rng.randint(1, 21), sequence=sequence)  # fmt: skip
                reported.append((ts + rng.randrange(20), tick))
    reported.sort(key=lambda pair: pair[0])
    return [tick for _, tick in reported]


def market_symbols(n: int) -> list[str]:
    """``n`` generated tickers (``AAAA``, ``AAAB``, ...): a market's worth of symbols."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return ["".join(letters[i // 26**p % 26] for p in (3, 2, 1, 0)) for i in range(n)]


def market_ticks(symbols: list[str], per_minute: int) -> list[Tick]:
    """``MARKET_MINUTES`` of ``per_minute`` trades per symbol from the session's open, in the
    order a feed reports them: all symbols interleaved by time, each with its own random
    walk, a tenth of the trades odd lots (condition 37), a few intermarket sweeps (14)."""
    rng = random.Random(11)
    open_ms = int(datetime(SESSION.year, SESSION.month, SESSION.day, 14, 30, tzinfo=UTC)
                  .timestamp() * 1000)  # fmt: skip
    reported: list[tuple[int, Tick]] = []
    for symbol in symbols:
        price, sequence = round(rng.uniform(5, 500), 2), 0
        for minute in range(MARKET_MINUTES):
            start = open_ms + minute * 60_000
            for ts in sorted(start + rng.randrange(60_000) for _ in range(per_minute)):
                price = max(0.01, round(price * (1 + rng.gauss(0, 0.0005)), 2))
                sequence += 1
                odd = rng.random() < 0.1
                conditions = (37,) if odd else (14,) if rng.random() < 0.15 else ()
                size = rng.randint(1, 99) if odd else 100 * rng.randint(1, 10)
                tick = Tick(symbol=symbol, ts=ts, price=price, size=size, conditions=conditions,
                            exchange=rng.randint(1, 21), trade_id=str(sequence),
                            sequence=sequence)  # fmt: skip
                reported.append((ts + rng.randrange(20), tick))
    reported.sort(key=lambda pair: pair[0])
    return [tick for _, tick in reported]


async def produce(settings: Settings, ticks: list[Tick]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5,
                                max_batch_size=1024 * 1024)  # fmt: skip
    await producer.start()
    try:
        topic = settings.topic("ticks.raw")
        for tick in ticks:
            await producer.send(topic, tick.to_json(), key=tick.symbol.encode())
        await producer.flush()
    finally:
        await producer.stop()


def fold_raw(bars: dict[tuple[str, int], list[float]], tick: dict[str, Any], width: int) -> None:
    """The baseline's fold: a tick's price and size into its ``width`` ms window's
    ``[open, high, low, close, volume]``, in arrival order, nothing checked."""
    ts, price = tick["ts"], tick["price"]
    key = (tick["symbol"], ts - ts % width)
    bar = bars.get(key)
    if bar is None:
        bars[key] = [price, price, price, price, tick["size"]]
        return
    if price > bar[1]:
        bar[1] = price
    elif price < bar[2]:
        bar[2] = price
    bar[3] = price
    bar[4] += tick["size"]


async def baseline(settings: Settings, n: int) -> tuple[float, float]:
    """Ticks per second and per CPU second of a consumer (no group, from the beginning) that
    decodes the ticks and folds them into 1m and 5m OHLCV dicts."""
    consumer = AIOKafkaConsumer(settings.topic("ticks.raw"), group_id=None,
                                bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    minutes: dict[tuple[str, int], list[float]] = {}
    fives: dict[tuple[str, int], list[float]] = {}
    try:
        seen, started, cpu = 0, time.perf_counter(), time.process_time()
        while seen < n:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    tick = orjson.loads(record.value)
                    fold_raw(minutes, tick, 60_000)
                    fold_raw(fives, tick, 300_000)
                seen += len(records)
        return n / (time.perf_counter() - started), n / (time.process_time() - cpu)
    finally:
        await consumer.stop()


async def committed(admin: AIOKafkaAdminClient, settings: Settings) -> int:
    offsets = await admin.list_consumer_group_offsets(f"{settings.app_id}-ticks")
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)


def quix_rate(settings: Settings, total: int) -> float:
    """Ticks/s of the Quix Streams job on the same topic (its virtualenv made if missing)."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", QUIX_REQUIREMENT], check=True)
    script = Path(__file__).with_name("quix_ohlcv.py")
    done = subprocess.run(
        [str(python), str(script), "--bootstrap", settings.kafka_bootstrap,
         "--topic", settings.topic("ticks.raw"), "--ticks", str(total)],
        check=True, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("quix:")]
    return float(lines[-1].split()[1])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(args: argparse.Namespace) -> None:
    tag = uuid.uuid4().hex[:8]
    data = Path(tempfile.mkdtemp(prefix="chronox-tick-bench-"))
    settings = Settings().with_overrides(
        topic_prefix=f"bench{tag}", app_id=f"chronox-bench-{tag}", postgres_schema=f"bench{tag}",
        redis_prefix=f"bench{tag}:", data_dir=data, tick_timeframes="1m,5m", log_level="WARNING",
        web_enabled=False,  # whatever else runs on this host: its port may be taken
    )  # fmt: skip
    await ensure_topics(settings)
    try:
        await measure(settings, args, data)
    finally:
        await drop_run(settings)


async def measure(settings: Settings, args: argparse.Namespace, data: Path) -> None:
    feed = "session" if args.trades_per_minute == 0 else args.feed
    n_symbols = args.symbols or FEEDS[feed][0]
    per_minute = args.trades_per_minute or FEEDS[feed][1]
    if feed == "market":
        ticks = market_ticks(market_symbols(n_symbols), per_minute)
        shape = f"market: {per_minute} trades/min, {MARKET_MINUTES} min"
    else:
        if n_symbols > len(SYMBOLS):
            raise SystemExit(f"--feed {feed} takes at most {len(SYMBOLS)} symbols")
        symbols = SYMBOLS[:n_symbols]
        ticks = session_ticks(symbols) if feed == "session" else dense_ticks(symbols, per_minute)
        shape = "one session" if feed == "session" else (
            f"dense: {per_minute} trades/min, {DENSE_MINUTES} min")  # fmt: skip
    await produce(settings, ticks)
    total = await message_count(settings, settings.topic("ticks.raw"))
    rounds = [await baseline(settings, total) for _ in range(BASELINE_ROUNDS)]
    raw = statistics.median(wall for wall, _ in rounds)
    raw_cpu = statistics.median(per_cpu for _, per_cpu in rounds)

    worker = Child.start("worker", ["chronox_stream", "worker"], env=settings.to_env(),
                         log_path=data / "worker.log")  # fmt: skip
    print(f"worker pid {worker.process.pid} (for a profiler)", flush=True)
    rss = 0.0
    first: tuple[float, float, int] | None = None
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()  # one client for the polling: the loop shares the worker's machine
    try:
        while (done := await committed(admin, settings)) < total:
            if first is None and done > 0:
                first = (time.perf_counter(), cpu_seconds(worker.process.pid), done)
            rss = max(rss, peak_rss_mb(worker.process.pid))
            await asyncio.sleep(0.1)
        finished, finished_cpu = time.perf_counter(), cpu_seconds(worker.process.pid)
    finally:
        await admin.close()
        worker.stop()
    started, started_cpu, already = first or (finished, finished_cpu, 0)
    ours = (total - already) / max(finished - started, 1e-9)
    ours_cpu = (total - already) / max(finished_cpu - started_cpu, 1e-9)
    print(f"ticks: {total:,} of {n_symbols:,} symbols ({shape}, report order)")
    print(f"raw aiokafka decode-and-fold loop: {raw:,.0f} ticks/s (median of {BASELINE_ROUNDS})")
    print(f"one worker, 1m+5m bars:  {ours:,.0f} ticks/s (first to last commit)  "
          f"peak RSS {rss:.0f} MB")  # fmt: skip
    print(f"ratio to the raw loop: {ours / raw:.2f} (target >= 0.50 on the market feed)")
    print(f"per CPU second: worker {ours_cpu:,.0f}, raw loop {raw_cpu:,.0f} ticks, ratio "
          f"{ours_cpu / raw_cpu:.2f} (steadier than the rates on a shared machine)")  # fmt: skip
    print(f"CPU per tick: worker {1e6 / ours_cpu:.1f} µs, raw loop {1e6 / raw_cpu:.1f} µs")
    if args.quix:
        quix = quix_rate(settings, total)
        print(f"Quix Streams, 1m+5m bars: {quix:,.0f} ticks/s (first to last tick)  "
              f"ratio {quix / raw:.2f}; ours / Quix {ours / quix:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-quix", dest="quix", action="store_false", help="skip the peer")
    parser.add_argument("--feed", choices=sorted(FEEDS), default="market",
                        help="market-wide (default), dense, or the simulator session")  # fmt: skip
    parser.add_argument("--symbols", type=int, default=0,
                        help="symbols (default: 3,000 for market, 20 for the others)")  # fmt: skip
    parser.add_argument("--trades-per-minute", type=int, default=None,
                        help="trades per symbol and minute (default: 20 for market, 250 for "
                        "dense); 0: the simulator's session")  # fmt: skip
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
