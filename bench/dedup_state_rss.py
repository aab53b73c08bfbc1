"""Memory of the dedup state at scale: N bars in the RocksDB stores a worker's dedup table uses.

Opens one RocksDB database per partition with the options the worker's tables
use (``tables.raw.ROCKSDB_OPTIONS``, through Faust's own ``RocksDBOptions``),
writes N dedup entries (key ``SYMBOL|1m|ts``, 9-byte value) spread by symbol,
reads a random 1% back, and prints this process's peak RSS next to a bare
Python baseline. Target: < 500 MB at 10M bars.

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

from chronox_stream.envelope import format_ts
from tables.raw import ROCKSDB_OPTIONS


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
    value = b"\x00" * 8 + b"\x03"
    began = time.perf_counter()
    for s in range(args.symbols):
        symbol = f"S{s:05d}"
        db = dbs[zlib.crc32(symbol.encode()) % args.partitions]
        batch = WriteBatch(raw_mode=True)
        for i in range(per_symbol):
            batch.put(f"{symbol}|1m|{format_ts(start + timedelta(minutes=i))}".encode(), value)
        db.write(batch)
    written_s = time.perf_counter() - began
    rng = random.Random(1)
    for _ in range(args.bars // 100):
        symbol = f"S{rng.randrange(args.symbols):05d}"
        db = dbs[zlib.crc32(symbol.encode()) % args.partitions]
        ts = format_ts(start + timedelta(minutes=rng.randrange(per_symbol)))
        assert db.get(f"{symbol}|1m|{ts}".encode()) == value
    total = per_symbol * args.symbols
    print(f"dedup entries        : {total:,} in {args.partitions} RocksDB databases")
    print(f"write rate           : {total / written_s:,.0f} entries/s")
    print(f"python baseline RSS  : {baseline:,.0f} MB")
    print(f"peak RSS             : {rss_mb('VmHWM'):,.0f} MB (target < 500 MB)")
    for db in dbs:
        db.close()


if __name__ == "__main__":
    main()
