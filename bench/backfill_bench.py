"""End-to-end backfill benchmark: simulator -> worker -> Kafka -> PostgreSQL, with raw baselines.

Runs against the local stack (``chronox stack up``). In one run it measures
  * end to end: request sent -> every bar in PostgreSQL, bars/s;
  * per stage: backfill (request sent -> every work item reported finished: fetch, parse,
    dedup, publish) and sink (PostgreSQL rows/s from the rows' ``updated_at``);
  * raw baselines on the same envelopes: an aiokafka produce+consume loop, and asyncpg
    COPY of the same rows;
  * each worker's peak RSS (``--workers N`` runs N workers in one consumer group);
  * the CPU time the workers used from the request to the last row, per bar, against the
    CPU time per message of the aiokafka baseline: unlike the rates, it hardly moves with
    the load of other jobs on a shared machine, so it shows what a change saves;
and prints each stage's ratio to its baseline (target: end to end >= 50% of the slowest).

The sink runs while the backfill publishes, so its rate is bounded by the backfill's: the
"sink tail" (last row in PostgreSQL minus the backfill stage's end) says whether it keeps up.
Each worker's pid is printed when it is ready, for a sampling profiler (py-spy) to attach.

    .venv/bin/python bench/backfill_bench.py [--symbols 10] [--workers 1] [--strategy flatpack+api]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from throwaway import drop_run

from chronox_stream.client.children import Child
from chronox_stream.client.follow import follow
from chronox_stream.client.ingest import send_request
from chronox_stream.contracts.envelope import decode_bar
from chronox_stream.settings import Settings

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "NFLX", "INTC"]
BASELINE_ROUNDS = 3  # the baselines' median: a single round varies by half on a shared machine
CLOCK = "2024-02-01T01:00:00Z"  # a seeded month of January 2024 lies in the past


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def read_envelopes(settings: Settings, topic: str, n: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)  # fmt: skip
    await consumer.start()
    out: list[bytes] = []
    try:
        while len(out) < n:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10000)).values():
                out.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return out


async def kafka_baseline(
    settings: Settings, payloads: list[bytes], round_no: int
) -> tuple[float, float]:
    """Messages/s of a bare aiokafka produce-then-consume of the same envelopes, keyed by
    symbol, with the worker's producer settings, and this process's CPU µs per message."""
    topic = f"{settings.topic_prefix}.baseline-{round_no}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    await admin.close()
    keyed = [(orjson.loads(p)["symbol"].encode(), p) for p in payloads]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=5, max_batch_size=1024 * 1024)  # fmt: skip
    await producer.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    futures = [await producer.send(topic, key=key, value=value) for key, value in keyed]
    for future in futures:
        await future
    await producer.stop()
    await read_envelopes(settings, topic, len(payloads))
    cpu_us = (time.process_time() - cpu_started) / len(payloads) * 1e6
    return len(payloads) / (time.perf_counter() - started), cpu_us


async def copy_baseline(settings: Settings, payloads: list[bytes]) -> float:
    """Rows/s of a bare asyncpg COPY of the same rows into a temporary table (median)."""
    rows = []
    for p in payloads:
        b, source = decode_bar(p)
        rows.append((b.symbol, b.tf, b.ts, b.open, b.high, b.low, b.close, b.volume, b.vwap,
                     b.transactions, source))  # fmt: skip
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    try:
        await conn.execute(
            "CREATE TEMP TABLE copy_baseline (symbol text, tf text, ts timestamptz, open float8, "
            "high float8, low float8, close float8, volume float8, vwap float8, "
            "transactions bigint, source text)"
        )
        rates = []
        for _ in range(BASELINE_ROUNDS):
            await conn.execute("TRUNCATE copy_baseline")
            started = time.perf_counter()
            await conn.copy_records_to_table("copy_baseline", records=rows)
            rates.append(len(rows) / (time.perf_counter() - started))
        return statistics.median(rates)
    finally:
        await conn.close()


async def measure(
    settings: Settings, args: argparse.Namespace, workers: list[Child]
) -> dict[str, Any]:
    symbols = SYMBOLS[: args.symbols]
    rid = f"bench-{uuid.uuid4().hex[:6]}"
    request = {"request_id": rid, "symbols": symbols, "strategy": args.strategy,
               "start": args.start, "end": args.end}  # fmt: skip
    cpu_started = sum(cpu_s(worker.process.pid) for worker in workers)
    started = time.perf_counter()
    outcome = await follow(settings, rid, lambda: send_request(settings, request), timeout_s=1800)
    bars = outcome.bars
    backfill_s = time.perf_counter() - started
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    schema = f'"{settings.postgres_schema}"'
    while (await conn.fetchval(f"SELECT count(*) FROM {schema}.bars")) < bars:
        await asyncio.sleep(0.05)
    e2e_s = time.perf_counter() - started
    cpu_used = sum(cpu_s(worker.process.pid) for worker in workers) - cpu_started
    first, last = await conn.fetchrow(f"SELECT min(updated_at), max(updated_at) FROM {schema}.bars")
    await conn.close()
    rss = [peak_rss_mb(worker.process.pid) for worker in workers]
    payloads = await read_envelopes(settings, settings.topic("bars.1m"), bars)
    kafka = [await kafka_baseline(settings, payloads, n) for n in range(BASELINE_ROUNDS)]
    return {
        "bars": bars,
        "e2e": bars / e2e_s,
        "backfill": bars / backfill_s,
        "sink": bars / max((last - first).total_seconds(), 1e-3),
        "sink_tail_s": e2e_s - backfill_s,
        "kafka_raw": statistics.median(rate for rate, _ in kafka),
        "worker_cpu_us": cpu_used / bars * 1e6,
        "kafka_cpu_us": statistics.median(cpu for _, cpu in kafka),
        "copy_raw": await copy_baseline(settings, payloads),
        "rss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2024-01-12")
    parser.add_argument("--strategy", default="flatpack+api")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # A SIGTERM (``timeout``, a CI runner) unwinds like Ctrl-C, so the ``finally`` below stops
    # the simulator and the workers: they run in sessions of their own and would outlive it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    tag = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="chronox-bench-"))
    settings = Settings().with_overrides(
        topic_prefix=f"bench{tag}", app_id=f"bench-{tag}", postgres_schema=f"bench{tag}",
        redis_prefix=f"bench{tag}:", data_dir=work / "data", sim_port=free_port(),
        sim_s3_port=free_port(), sim_data_dir=work / "sim", log_level="WARNING",
        web_enabled=False,  # --workers N on one host: the default port would clash
    )  # fmt: skip
    settings = settings.with_overrides(
        polygon_rest_url=f"http://127.0.0.1:{settings.sim_port}",
        polygon_ws_url=f"ws://127.0.0.1:{settings.sim_port}/stocks",
        s3_endpoint_url=f"http://127.0.0.1:{settings.sim_s3_port}",
    )
    env = settings.to_env()
    sim = Child.start("sim", ["chronox_stream", "sim", "--clock-start", CLOCK, "--symbols",
                              ",".join(SYMBOLS[: args.symbols]), "--flatfiles-from", args.start,
                              "--flatfiles-to", args.end],
                      env=env, log_path=work / "sim.log")  # fmt: skip
    workers: list[Child] = []
    try:
        sim.wait_for_log("listening", timeout_s=300)
        for n in range(args.workers):
            worker_env = {**env, "CHRONOX_LOG_LEVEL": "INFO",
                          "CHRONOX_DATA_DIR": str(work / f"data-{n}")}  # fmt: skip
            log_path = work / f"worker-{n}.log"
            workers.append(
                Child.start(
                    f"worker-{n}", ["chronox_stream", "worker"], env=worker_env, log_path=log_path
                )  # fmt: skip
            )
        for n, worker in enumerate(workers):
            worker.wait_for_log("Ready", timeout_s=120)
            # A request is timed from a worker that reads: its sinks hold their partitions.
            for mirror in ("postgres", "redis"):
                worker.wait_for_log(f"{mirror} sink assigned", timeout_s=120)
            print(f"worker-{n} ready, pid {worker.process.pid}", flush=True)
        r = asyncio.run(measure(settings, args, workers))
    finally:
        for worker in workers:
            worker.stop()
        sim.stop()
        asyncio.run(drop_run(settings))
    report(r, args)


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    slowest = min(r["kafka_raw"], r["copy_raw"])
    print(f"{r['bars']:,} bars of 1m, {args.symbols} symbols, {args.start}..{args.end}, "
          f"{args.strategy}, {args.workers} worker(s), {datetime.now(UTC):%Y-%m-%d}")  # fmt: skip
    rows = [
        ("end to end", r["e2e"], "bars/s", r["e2e"] / slowest, "slowest baseline (>= 0.50)"),
        ("backfill", r["backfill"], "bars/s", r["backfill"] / r["kafka_raw"], "aiokafka baseline"),
        ("sink (PostgreSQL)", r["sink"], "rows/s", r["sink"] / r["copy_raw"], "COPY baseline"),
        ("raw aiokafka", r["kafka_raw"], "msgs/s", None, ""),
        ("raw asyncpg COPY", r["copy_raw"], "rows/s", None, ""),
    ]
    for name, value, unit, ratio, against in rows:
        tail = f"   ratio {ratio:5.2f} to {against}" if ratio is not None else ""
        print(f"{name:<18}{value:>10,.0f} {unit}{tail}")
    print(f"{'sink tail':<18}{r['sink_tail_s']:>10,.2f} s      after the backfill stage's end")
    cpu_ratio = r["kafka_cpu_us"] / r["worker_cpu_us"]
    print(f"{'worker CPU':<18}{r['worker_cpu_us']:>10,.1f} µs/bar ratio {cpu_ratio:5.2f} to "
          f"aiokafka baseline's {r['kafka_cpu_us']:.1f} µs/msg")  # fmt: skip
    for n, rss in enumerate(r["rss_mb"]):
        print(f"{f'worker-{n} peak RSS':<18}{rss:>10,.0f} MB")


if __name__ == "__main__":
    main()
