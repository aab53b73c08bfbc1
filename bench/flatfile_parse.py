"""Flat-file parse rate: our parser against pyarrow's bare CSV read of the same bytes.

Target: >= 1M rows/s. Prints rows/s of both and the ratio (ours / raw), so a
noisy machine moves both numbers together. Then what a worker's day cache does with a
parsed day: the bars of every requested symbol, one symbol at a time.

    .venv/bin/python bench/flatfile_parse.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import gzip
import io
import random
import time
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.csv as pacsv

from chronox_stream.sources.flatfile_csv import parse_aggregates

DAY = date(2024, 1, 16)


def synthetic_file(rows: int, tickers: int) -> bytes:
    """A minute-aggregates day file shaped like Polygon's: many tickers, 960 minutes each."""
    rng = random.Random(7)
    start_ns = int(datetime(2024, 1, 16, 9, tzinfo=UTC).timestamp()) * 10**9
    out = io.StringIO()
    out.write("ticker,volume,open,close,high,low,window_start,transactions\n")
    names = [f"T{i:05d}" for i in range(tickers)]
    for i in range(rows):
        price = 10 + rng.random() * 400
        out.write(
            f"{names[i % tickers]},{rng.randint(1, 50000)},{price:.2f},{price * 1.001:.2f},"
            f"{price * 1.002:.2f},{price * 0.999:.2f},{start_ns + (i // tickers) * 60 * 10**9},"
            f"{rng.randint(1, 400)}\n"
        )
    return gzip.compress(out.getvalue().encode(), compresslevel=6)


def best_of(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--tickers", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = synthetic_file(args.rows, args.tickers)
    wanted = [f"T{i:05d}" for i in range(0, args.tickers, 10)]

    def raw() -> None:
        pacsv.read_csv(pa.CompressedInputStream(pa.BufferReader(data), "gzip"))

    def ours() -> None:
        parse_aggregates(data, day=DAY, symbols=wanted)

    raw_s, ours_s = best_of(args.runs, raw), best_of(args.runs, ours)
    print(f"file: {args.rows:,} rows, {len(data) / 1e6:.1f} MB gzip")
    print(f"raw pyarrow read_csv : {args.rows / raw_s / 1e6:6.2f} M rows/s")
    print(f"parse_aggregates     : {args.rows / ours_s / 1e6:6.2f} M rows/s "
          f"(filter to {len(wanted)} symbols, validate, dedupe, sort)")  # fmt: skip
    print(f"ratio ours/raw       : {raw_s / ours_s:6.2f}")
    print(f"target >= 1M rows/s  : {'met' if args.rows / ours_s >= 1e6 else 'MISSED'}")
    day = parse_aggregates(data, day=DAY, symbols=None)

    def per_symbol() -> None:
        for symbol in wanted:
            day.bars_of(symbol, "1m")

    per_symbol_s = best_of(args.runs, per_symbol)
    print(f"bars_of per symbol   : {per_symbol_s / len(wanted) * 1e6:8.1f} µs per symbol "
          f"({len(wanted)} symbols of {args.tickers} in the day, "
          f"{day.table.num_rows / args.tickers:.0f} rows each)")  # fmt: skip


if __name__ == "__main__":
    main()
