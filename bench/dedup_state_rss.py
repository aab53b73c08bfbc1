"""Memory of the dedup state at scale: N bars in the RocksDB stores a worker's dedup table uses.

Opens one RocksDB database per partition with the options the worker's tables
use (``tables.raw.ROCKSDB_OPTIONS``, through Faust's own ``RocksDBOptions``),
writes the dedup buckets of N minute bars spread by symbol (one value per
symbol and UTC day, encoded by ``chronox_stream.domain.dedup`` exactly as the worker
records them after an api backfill: every bar with vwap and transactions),
reads a random 1% of the buckets back, and prints the bytes stored per bar and
this process's peak RSS next to a bare Python baseline. Target: < 500 MB at 10M bars.

    .venv/bin/python bench/dedup_state_rss.py [--bars 10000000] [--partitions 8]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from faust.stores.rocksdb import RocksDBOptions
from rocksdict import WriteBatch

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.dedup import admit_batch, decode_bucket, encode_bucket
from chronox_stream.tables.raw import ROCKSDB_OPTIONS

MINUTES_PER_DAY = 960  # an extended session: 04:00 to 20:00 New York


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def day_bars(symbol: str, day: datetime, count: int, rng: random.Random) -> list[Bar]:
    """``count`` minute bars of one day with seeded values, as the api phase emits them."""
    bars = []
    for i in range(count):
        price = round(100 + rng.random() * 50, 4)
        bars.append(Bar(symbol=symbol, tf="1m", ts=day + timedelta(minutes=i), open=price,
                        high=price + 0.1, low=price - 0.1, close=price + 0.01,
                        volume=float(rng.randrange(100, 100_000)), vwap=price + 0.005,
                        transactions=rng.randrange(1, 500)))  # fmt: skip
    return bars


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=10_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--symbols", type=int, default=2000)
    args = parser.parse_args()
    baseline = rss_mb("VmRSS")
    folder = Path(tempfile.mkdtemp(prefix="chronox-dedup-rss-"))
    options = RocksDBOptions(**ROCKSDB_OPTIONS, use_rocksdict=True)
    dbs = [options.open(folder / f"p{p}") for p in range(args.partitions)]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    per_symbol = args.bars // args.symbols
    rng = random.Random(1)
    written_ms = int(time.time() * 1000)
    keys: list[tuple[int, bytes]] = []
    stored_bytes = 0
    began = time.perf_counter()
    for s in range(args.symbols):
        symbol = f"S{s:05d}"
        partition = zlib.crc32(symbol.encode()) % args.partitions
        batch = WriteBatch(raw_mode=True)
        for first in range(0, per_symbol, MINUTES_PER_DAY):
            day = start + timedelta(days=first // MINUTES_PER_DAY)
            bars = day_bars(symbol, day, min(MINUTES_PER_DAY, per_symbol - first), rng)
            _, buckets = admit_batch(bars, "api", {})
            for key, bucket in buckets.items():
                value = encode_bucket(bucket, written_ms)
                stored_bytes += len(value)
                batch.put(key.encode(), value)
                keys.append((partition, key.encode()))
        dbs[partition].write(batch)
    written_s = time.perf_counter() - began
    for partition, key in rng.sample(keys, max(1, len(keys) // 100)):
        assert decode_bucket(dbs[partition].get(key))
    total = per_symbol * args.symbols
    print(f"dedup entries        : {total:,} bars in {len(keys):,} buckets, "
          f"{args.partitions} RocksDB databases")  # fmt: skip
    print(f"stored values        : {stored_bytes / 1e6:,.1f} MB ({stored_bytes / total:.1f} B/bar)")
    print(f"write rate           : {total / written_s:,.0f} bars/s (encoding included)")
    print(f"python baseline RSS  : {baseline:,.0f} MB")
    print(f"peak RSS             : {rss_mb('VmHWM'):,.0f} MB (target < 500 MB)")
    for db in dbs:
        db.close()


if __name__ == "__main__":
    main()
