"""Tick folding rate in one process: parse + fold into every timeframe, against decoding only.

The pure core of the stream path (no Kafka, no tables): the simulator's trades of
one session for a few symbols, as raw-ticks JSON, parsed and folded by a
``BarBuilder`` into 1m, 5m, 15m, 30m, 1h and 1d bars with a dict as state. The
baseline decodes the same payloads with orjson and does nothing else. Prints
ticks/s of both and the ratio, an upper bound for what a worker can aggregate.

    .venv/bin/python bench/tick_fold.py [--symbols 3]
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import orjson

from chronox_stream.contracts.ticks import Tick, parse_tick
from chronox_stream.domain.tick_bars import BarBuilder
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.sim.market import day_columns

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "NFLX", "INTC"]
DAY = date(2024, 1, 16)


def payloads(symbols: list[str]) -> list[bytes]:
    """The session's trades of ``symbols`` as raw-ticks messages, in the order reported."""
    trades = sorted(
        (t for s in symbols for t in day_columns(7, s, DAY).trades()), key=lambda t: t.report_ns
    )
    return [
        Tick(symbol=t.symbol, ts=t.sip_ns // 1_000_000, price=t.price, size=t.size,
             conditions=t.conditions, exchange=t.exchange, trade_id=t.trade_id,
             sequence=t.sequence).to_json()
        for t in trades
    ]  # fmt: skip


def rate(work: list[bytes], run: object) -> float:
    started = time.perf_counter()
    run(work)  # type: ignore[operator]
    return len(work) / (time.perf_counter() - started)


def decode_only(work: list[bytes]) -> None:
    for raw in work:
        orjson.loads(raw)


def fold_all(work: list[bytes]) -> None:
    builder = BarBuilder(TIMEFRAMES.values(), state={}, grace_ms=2_000, late_limit_ms=20 * 60_000)
    for raw in work:
        builder.add(parse_tick(raw))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=3)
    args = parser.parse_args()
    work = payloads(SYMBOLS[: args.symbols])
    raw = max(rate(work, decode_only) for _ in range(3))
    ours = max(rate(work, fold_all) for _ in range(3))
    print(f"{len(work):,} ticks, {args.symbols} symbols, 6 timeframes")
    print(f"parse + fold    {ours:>12,.0f} ticks/s   ratio {ours / raw:5.2f} to decoding only")
    print(f"decode only     {raw:>12,.0f} ticks/s")


if __name__ == "__main__":
    main()
