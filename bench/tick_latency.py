"""Tick-to-Redis latency at a steady rate: produce ticks, time their in-progress bars.

Runs against the local stack (``chronox stack up``). One worker runs with
``CHRONOX_TICK_LIVE_MS`` (default 20 ms here). The producer sends ``--rate``
ticks/s for ``--seconds`` over ``--symbols`` symbols, each tick's price one step
above the last, so the ``close`` of an in-progress 1m bar on Redis names the
newest tick it holds. Latency is the time from that tick's send to the bar's
arrival on a Redis subscriber; printed as p50/p99 over the run's second half
(the first is the worker's warm-up), with the rate the producer kept.

    .venv/bin/python bench/tick_latency.py [--rate 10000] [--seconds 30] [--live-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from throwaway import drop_run

from chronox_stream.client.children import Child
from chronox_stream.contracts.ticks import Tick
from chronox_stream.runtime.topics import ensure_topics
from chronox_stream.settings import Settings

STEP = 0.0001  # price step per tick: the close names the tick
SLICE_S = 0.01


async def produce(settings: Settings, args: argparse.Namespace, sent: list[float]) -> float:
    """Send at ``args.rate`` in 10 ms slices; ``sent[i]`` is tick i's send time. Returns the
    rate actually kept."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=1)
    await producer.start()
    symbols = [f"S{i:03d}" for i in range(args.symbols)]
    per_slice = max(1, round(args.rate * SLICE_S))
    topic = settings.topic("ticks.raw")
    started = time.perf_counter()
    try:
        n = 0
        while time.perf_counter() - started < args.seconds:
            for _ in range(per_slice):
                symbol = symbols[n % len(symbols)]
                tick = Tick(symbol=symbol, ts=int(time.time() * 1000), price=round(1 + n * STEP, 4),
                            size=100, sequence=n)  # fmt: skip
                sent.append(time.perf_counter())
                await producer.send(topic, tick.to_json(), key=symbol.encode())
                n += 1
            await asyncio.sleep(max(0.0, started + n / args.rate - time.perf_counter()))
        await producer.flush()
        return n / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def listen(settings: Settings, sent: list[float], latencies: list[tuple[float, float]],
                 stop: asyncio.Event) -> None:  # fmt: skip
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    pubsub = client.pubsub()
    await pubsub.psubscribe(f"{settings.redis_prefix}live:*:1m")
    try:
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is None:
                continue
            arrived = time.perf_counter()
            close = orjson.loads(message["data"])["ohlcv"]["close"]
            index = round((close - 1) / STEP)
            if 0 <= index < len(sent):
                latencies.append((sent[index], arrived - sent[index]))
    finally:
        await pubsub.aclose()
        await client.aclose()


async def run(args: argparse.Namespace) -> None:
    tag = uuid.uuid4().hex[:8]
    data = Path(tempfile.mkdtemp(prefix="chronox-latency-bench-"))
    settings = Settings().with_overrides(
        topic_prefix=f"bench{tag}", app_id=f"chronox-bench-{tag}", postgres_schema=f"bench{tag}",
        redis_prefix=f"bench{tag}:", data_dir=data, tick_timeframes="1m,5m",
        tick_live_ms=args.live_ms, log_level="INFO",
        web_enabled=False,  # whatever else runs on this host: its port may be taken
    )  # fmt: skip
    await ensure_topics(settings)
    worker = Child.start("worker", ["chronox_stream", "worker"], env=settings.to_env(),
                         log_path=data / "worker.log")  # fmt: skip
    try:
        worker.wait_for_log("Ready", timeout_s=120)
        sent: list[float] = []
        latencies: list[tuple[float, float]] = []
        stop = asyncio.Event()
        listener = asyncio.create_task(listen(settings, sent, latencies, stop))
        kept = await produce(settings, args, sent)
        await asyncio.sleep(2)
        stop.set()
        await listener
    finally:
        worker.stop()
        await drop_run(settings)
    half = sent[len(sent) // 2] if sent else 0.0
    steady = sorted(latency for at, latency in latencies if at >= half)
    if not steady:
        print("no in-progress bar arrived")
        return
    p50 = statistics.median(steady) * 1000
    p99 = steady[min(len(steady) - 1, int(len(steady) * 0.99))] * 1000
    print(f"rate kept: {kept:,.0f} ticks/s over {args.seconds}s, {args.symbols} symbols, "
          f"live every {args.live_ms} ms")  # fmt: skip
    print(f"tick -> Redis in-progress bar: p50 {p50:.0f} ms, p99 {p99:.0f} ms "
          f"({len(steady):,} bars in the second half; target p99 < 100 ms)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--live-ms", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
