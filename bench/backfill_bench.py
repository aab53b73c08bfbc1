"""End-to-end backfill benchmark: simulator -> worker -> Kafka -> PostgreSQL, with raw baselines.

Runs against the local stack (``chronox stack up``). In one run it measures
  * end to end: request sent -> every bar in PostgreSQL, bars/s;
  * per stage: backfill agent (fetch + dedup + publish, from status events) and sink
    (PostgreSQL rows/s from the rows' ``updated_at``);
  * raw baselines on the same envelopes: an aiokafka produce+consume loop, and asyncpg
    COPY of the same rows;
  * the worker's peak RSS;
and prints each stage's ratio to its baseline (target: end to end >= 50% of the slowest).

    .venv/bin/python bench/backfill_bench.py [--symbols 5] [--days 5] [--strategy flatpack+api]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
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

from chronox_stream.children import Child
from chronox_stream.envelope import bar_from_envelope, decode_envelope
from chronox_stream.follow import follow
from chronox_stream.ingest import send_request
from chronox_stream.settings import Settings

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "NFLX", "INTC"]
CLOCK = "2024-02-01T01:00:00Z"  # a seeded month of January 2024 lies in the past


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


async def kafka_baseline(settings: Settings, payloads: list[bytes]) -> float:
    """Messages/s of a bare aiokafka produce-then-consume of the same envelopes."""
    topic = f"{settings.topic_prefix}.baseline"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=5)  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    futures = [await producer.send(topic, key=orjson.loads(p)["symbol"].encode(), value=p)
               for p in payloads]  # fmt: skip
    await asyncio.gather(*futures)
    await producer.stop()
    await read_envelopes(settings, topic, len(payloads))
    return len(payloads) / (time.perf_counter() - started)


async def copy_baseline(settings: Settings, payloads: list[bytes]) -> float:
    """Rows/s of a bare asyncpg COPY of the same rows into a temporary table."""
    rows = []
    for p in payloads:
        envelope = decode_envelope(p)
        b = bar_from_envelope(envelope)
        rows.append((b.symbol, b.tf, b.ts, b.open, b.high, b.low, b.close, b.volume, b.vwap,
                     b.transactions, envelope.source))  # fmt: skip
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    try:
        await conn.execute(
            "CREATE TEMP TABLE copy_baseline (symbol text, tf text, ts timestamptz, open float8, "
            "high float8, low float8, close float8, volume float8, vwap float8, "
            "transactions bigint, source text)"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table("copy_baseline", records=rows)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def measure(settings: Settings, args: argparse.Namespace, worker: Child) -> dict[str, Any]:
    symbols = SYMBOLS[: args.symbols]
    rid = f"bench-{uuid.uuid4().hex[:6]}"
    request = {"request_id": rid, "symbols": symbols, "strategy": args.strategy,
               "start": args.start, "end": args.end}  # fmt: skip
    started = time.perf_counter()
    outcome = await follow(settings, rid, lambda: send_request(settings, request), timeout_s=1800)
    bars = outcome.bars
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    schema = f'"{settings.postgres_schema}"'
    while (await conn.fetchval(f"SELECT count(*) FROM {schema}.bars")) < bars:
        await asyncio.sleep(0.05)
    e2e_s = time.perf_counter() - started
    first, last = await conn.fetchrow(f"SELECT min(updated_at), max(updated_at) FROM {schema}.bars")
    await conn.close()
    rss = peak_rss_mb(worker.process.pid)
    payloads = await read_envelopes(settings, settings.topic("bars.1m"), bars)
    return {
        "bars": bars,
        "e2e": bars / e2e_s,
        "sink": bars / max((last - first).total_seconds(), 1e-3),
        "kafka_raw": await kafka_baseline(settings, payloads),
        "copy_raw": await copy_baseline(settings, payloads),
        "rss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2024-01-08")
    parser.add_argument("--strategy", default="flatpack+api")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="chronox-bench-"))
    settings = Settings().with_overrides(
        topic_prefix=f"bench{tag}", app_id=f"bench-{tag}", postgres_schema=f"bench{tag}",
        redis_prefix=f"bench{tag}:", data_dir=work / "data", sim_port=free_port(),
        sim_s3_port=free_port(), sim_data_dir=work / "sim", log_level="WARNING",
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
    worker = None
    try:
        sim.wait_for_log("listening", timeout_s=300)
        worker_env = {**env, "CHRONOX_LOG_LEVEL": "INFO"}
        worker = Child.start(
            "worker", ["chronox_stream", "worker"], env=worker_env, log_path=work / "worker.log"
        )
        worker.wait_for_log("Ready", timeout_s=120)
        r = asyncio.run(measure(settings, args, worker))
    finally:
        if worker is not None:
            worker.stop()
        sim.stop()
    report(r, args)


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    slowest = min(r["kafka_raw"], r["copy_raw"])
    print(f"{r['bars']:,} bars of 1m, {args.symbols} symbols, {args.start}..{args.end}, "
          f"strategy {args.strategy} ({datetime.now(UTC):%Y-%m-%d})")  # fmt: skip
    rows = [
        ("end to end", r["e2e"], "bars/s", r["e2e"] / slowest, "slowest baseline (>= 0.50)"),
        ("sink (PostgreSQL)", r["sink"], "rows/s", r["sink"] / r["copy_raw"], "COPY baseline"),
        ("raw aiokafka", r["kafka_raw"], "msgs/s", None, ""),
        ("raw asyncpg COPY", r["copy_raw"], "rows/s", None, ""),
    ]
    for name, value, unit, ratio, against in rows:
        tail = f"   ratio {ratio:5.2f} to {against}" if ratio is not None else ""
        print(f"{name:<18}{value:>10,.0f} {unit}{tail}")
    print(f"{'worker peak RSS':<18}{r['rss_mb']:>10,.0f} MB")


if __name__ == "__main__":
    main()
