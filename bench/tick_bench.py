"""Tick aggregation benchmark: raw ticks on Kafka -> one worker's 1m and 5m bars, with a baseline.

Runs against the local stack (``chronox stack up``). It produces the trades of
``--symbols`` symbols (in report order, as a feed sends them) to a fresh raw-ticks
topic. Two feeds:
  * ``--trades-per-minute N`` (default 250): 150 minutes of a dense feed, N trades per
    symbol and minute with seeded prices, sizes and SIP conditions (a third odd
    lots). A live feed's shape: a feed only reaches tens of thousands of ticks a
    second when its symbols trade hundreds of times a minute, so a bar closes for
    every few hundred ticks;
  * ``--trades-per-minute 0``: the simulator's whole session, about 6 trades per
    symbol and minute, so a third of the ticks close a bar and the per-bar path
    (dedup, bar topics, Redis, PostgreSQL, all in the same process) dominates.

Then it measures in the same run:
  * the raw baseline: an aiokafka consumer loop that only decodes the same ticks;
  * one ``chronox worker`` aggregating them into 1m and 5m bars: ticks/s between its
    tick consumer group's first commit and its commit of the last offset (the
    aggregator commits about once a second, after writing its state; the worker's
    start-up is left out), and its peak RSS;
  * the same OHLCV job on Quix Streams (``bench/quix_ohlcv.py``, a peer run in its own
    virtualenv ``.venv-bench``, made on first use with ``QUIX_REQUIREMENT``);
and prints the worker's ratio to the baseline and to Quix (targets: >= 50,000 ticks/s
per worker, faster than Quix).

    .venv/bin/python bench/tick_bench.py [--symbols 20] [--trades-per-minute 250] [--no-quix]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

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


async def baseline(settings: Settings, n: int) -> float:
    """Ticks/s of a consumer that only decodes them (no group, from the beginning)."""
    consumer = AIOKafkaConsumer(settings.topic("ticks.raw"), group_id=None,
                                bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    try:
        seen, started = 0, time.perf_counter()
        while seen < n:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return n / (time.perf_counter() - started)
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
    )  # fmt: skip
    await ensure_topics(settings)
    symbols = SYMBOLS[: args.symbols]
    per_minute = args.trades_per_minute
    ticks = dense_ticks(symbols, per_minute) if per_minute else session_ticks(symbols)
    await produce(settings, ticks)
    total = await message_count(settings, settings.topic("ticks.raw"))
    rates = [await baseline(settings, total) for _ in range(BASELINE_ROUNDS)]
    raw = statistics.median(rates)

    worker = Child.start("worker", ["chronox_stream", "worker"], env=settings.to_env(),
                         log_path=data / "worker.log")  # fmt: skip
    rss = 0.0
    first: tuple[float, int] | None = None
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()  # one client for the polling: the loop shares the worker's machine
    try:
        while (done := await committed(admin, settings)) < total:
            if first is None and done > 0:
                first = (time.perf_counter(), done)
            rss = max(rss, peak_rss_mb(worker.process.pid))
            await asyncio.sleep(0.1)
        finished = time.perf_counter()
    finally:
        await admin.close()
        worker.stop()
    started, already = first or (finished, 0)
    ours = (total - already) / max(finished - started, 1e-9)
    feed = f"{per_minute} trades/min, {DENSE_MINUTES} min" if per_minute else "one session"
    print(f"ticks: {total:,} of {args.symbols} symbols ({feed}, report order)")
    print(f"raw aiokafka decode loop: {raw:,.0f} ticks/s (median of {BASELINE_ROUNDS})")
    print(f"one worker, 1m+5m bars:  {ours:,.0f} ticks/s (first to last commit)  "
          f"ratio {ours / raw:.2f}  peak RSS {rss:.0f} MB")  # fmt: skip
    if args.quix:
        quix = quix_rate(settings, total)
        print(f"Quix Streams, 1m+5m bars: {quix:,.0f} ticks/s (first to last tick)  "
              f"ratio {quix / raw:.2f}; ours / Quix {ours / quix:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-quix", dest="quix", action="store_false", help="skip the peer")
    parser.add_argument("--symbols", type=int, default=20, choices=range(1, len(SYMBOLS) + 1))
    parser.add_argument("--trades-per-minute", type=int, default=250,
                        help="trades per symbol and minute of the dense feed; 0: the "
                        "simulator's session")  # fmt: skip
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
