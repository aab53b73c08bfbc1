"""The same OHLCV job on Quix Streams, a peer for ``tick_bench.py`` (bench-only dependency).

Reads raw ticks (JSON, keyed by symbol) from ``--topic``, builds 1m and 5m bars in
event-time tumbling windows (2 s grace, Quix's RocksDB state with changelogs, as
it runs by default), writes the closed bars to an output topic, and prints the
ticks/s between its first and its last tick. Run by ``tick_bench.py`` in its own
virtualenv (``.venv-bench``), so the worker's dependencies stay as pinned.

    .venv-bench/bin/python bench/quix_ohlcv.py --bootstrap HOST:PORT --topic T --ticks N
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from typing import Any

from quixstreams import Application


def initial(tick: dict[str, Any]) -> dict[str, Any]:
    price = tick["price"]
    return {"open": price, "high": price, "low": price, "close": price, "volume": tick["size"],
            "notional": price * tick["size"], "n": 1}  # fmt: skip


def fold(bar: dict[str, Any], tick: dict[str, Any]) -> dict[str, Any]:
    price, size = tick["price"], tick["size"]
    return {"open": bar["open"], "high": max(bar["high"], price), "low": min(bar["low"], price),
            "close": price, "volume": bar["volume"] + size,
            "notional": bar["notional"] + price * size, "n": bar["n"] + 1}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--ticks", type=int, required=True)
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"quix-bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="quix-bench-"),
    )
    ticks = app.topic(args.topic, value_deserializer="json",
                      timestamp_extractor=lambda value, headers, ts, kind: value["ts"])  # fmt: skip
    bars = app.topic(f"{args.topic}.quix-bars", value_serializer="json")
    seen = {"n": 0, "first": 0.0}

    def count(tick: dict[str, Any]) -> None:
        if seen["n"] == 0:
            seen["first"] = time.perf_counter()
        seen["n"] += 1
        if seen["n"] >= args.ticks:
            elapsed = time.perf_counter() - seen["first"]
            print(f"quix: {args.ticks / elapsed:.0f} ticks/s", flush=True)
            app.stop()

    sdf = app.dataframe(ticks)
    sdf = sdf.update(count)
    for width_ms in (60_000, 300_000):
        window = sdf.tumbling_window(width_ms, grace_ms=2_000).reduce(fold, initial).final()
        window.to_topic(bars)
    app.run()


if __name__ == "__main__":
    main()
