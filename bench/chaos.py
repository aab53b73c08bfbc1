"""Chaos run: a backfill and a live stream through crashes, a join, a leave and two outages.

Needs Kafka of the local stack (``chronox stack up``); PostgreSQL and Redis are a
private pair on free loopback ports (``chronox_stream.stack.private``), since
they are stopped on purpose. A simulator runs a seeded market whose clock
passes through a regular session at ``--speed`` (30x: a minute every 2 s).

Two workers start; a throttled api backfill of the symbols over past days and
a stream of the same symbols (strategy ``stream``) are requested. Then, one
after the other with ``--pause-s`` between them:

1. a worker is SIGKILLed and started again;
2. a third worker joins;
3. PostgreSQL is stopped for ``--postgres-outage-s`` (30);
4. Redis is stopped for ``--redis-outage-s`` (30);
5. the worker holding the WebSocket is SIGKILLed and started again;
6. the third worker leaves (SIGTERM).

Once the backfill has finished, the stream runs ``--settle-s`` more, the
simulator's clock stops, and PostgreSQL is compared with the simulator's REST
minute bars: every bar of the backfill's range, and every minute the stream
covered (from its first whole minute to the stopped clock's). It prints the
bars expected and stored, those missing, extra or different, and the duplicate
envelopes on the bar topics (same ``dedup_key``, identical bytes: at-least-once
delivery lets Kafka carry a repeat), and exits 1 when PostgreSQL is not exact.

    .venv/bin/python bench/chaos.py [--symbols 3] [--postgres-outage-s 30] [--redis-outage-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from chronox_stream.client.children import Child
from chronox_stream.client.follow import Outcome, follow
from chronox_stream.client.ingest import send_request
from chronox_stream.domain.timeframes import TIMEFRAMES
from chronox_stream.domain.trading_dates import date_bound
from chronox_stream.runtime.topics import delete_topics, ensure_topics, read_to_end
from chronox_stream.settings import Settings
from chronox_stream.stack.private import PrivateStack, ServiceName, free_port

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "NFLX", "INTC"]
SEED = 7
CLOCK_START = "2024-01-17T15:00:00Z"  # 10:00 in New York; the backfill's days are all past
API_KEY = "chaos-key"
STREAM_OPENED = "stream opened by the leader"
STREAM_CLOSED = "stream closed"

Key = tuple[str, datetime]
Bars = dict[Key, tuple[float, ...]]


@dataclass
class Cluster:
    """The run's workers by name, each restartable with its own data folder."""

    settings: Settings
    folder: Path
    workers: dict[str, Child] = field(default_factory=dict)
    gone: list[Child] = field(default_factory=list)

    def start(self, name: str) -> Child:
        own = self.settings.with_overrides(data_dir=self.folder / f"data-{name}")
        child = Child.start(
            name,
            ["chronox_stream", "worker"],
            env=own.to_env(),
            log_path=self.folder / f"{name}-{len(self.workers) + len(self.gone)}.log",
        )
        if name in self.workers:
            self.gone.append(self.workers[name])
        self.workers[name] = child
        return child

    async def start_ready(self, *names: str) -> None:
        children = [self.start(name) for name in names]
        await asyncio.gather(
            *(asyncio.to_thread(c.wait_for_log, "Ready", timeout_s=180) for c in children)
        )

    def streaming(self) -> str | None:
        """The live worker whose log says it holds the WebSocket, if one does."""
        for name, child in self.workers.items():
            if child.process.poll() is None and child.log_path.exists():
                text = child.log_path.read_text(errors="replace")
                if text.rfind(STREAM_OPENED) > text.rfind(STREAM_CLOSED):
                    return name
        return None

    def stop_all(self) -> None:
        for child in self.workers.values():
            child.stop()


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--symbols", type=int, default=3, help="symbols backfilled and streamed")
    p.add_argument("--start", default="2024-01-09", help="first backfill day (New York)")
    p.add_argument("--end", default="2024-01-16", help="last backfill day (New York)")
    p.add_argument("--postgres-outage-s", type=float, default=30.0)
    p.add_argument("--redis-outage-s", type=float, default=30.0)
    p.add_argument("--pause-s", type=float, default=8.0, help="between two chaos events")
    p.add_argument(
        "--settle-s",
        type=float,
        default=40.0,
        help="stream time after the backfill finished, before the clock stops",
    )
    p.add_argument("--speed", type=float, default=30.0, help="the simulator's clock speed")
    p.add_argument(
        "--throttle-ms",
        type=int,
        default=None,
        help="backfill throttle (default: the backfill lasts about the whole run)",
    )
    p.add_argument("--timeout-s", type=float, default=900.0, help="for the whole run")
    return p.parse_args()


def say(started: float, line: str) -> None:
    print(f"{time.monotonic() - started:7.1f}s  {line}", flush=True)


def ms(day: str, *, end_of_day: bool = False) -> int:
    """Epoch ms of the trading date's first (or last) millisecond, as the request reads it."""
    return int(date_bound(date.fromisoformat(day), end=end_of_day).timestamp() * 1000)


def start_sim(folder: Path, symbols: list[str], speed: float) -> tuple[Child, str]:
    """``chronox sim`` on free ports, no flat files; returns the child and its REST URL."""
    port = free_port()
    args = [
        "chronox_stream.sim",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--s3-port",
        str(free_port()),
        "--seed",
        str(SEED),
        "--data-dir",
        str(folder / "sim"),
        "--clock-start",
        CLOCK_START,
        "--speed",
        str(speed),
        "--symbols",
        ",".join(symbols),
        "--no-flatfiles",
    ]
    child = Child.start(
        "sim", args, env={"CHRONOX_POLYGON_API_KEY": API_KEY}, log_path=folder / "sim.log"
    )
    child.wait_for_log("listening", timeout_s=120)
    return child, f"http://127.0.0.1:{port}"


async def sim_call(
    rest_url: str, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{rest_url}{path}", json=body) as resp:
            payload = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"simulator {path}: {resp.status} {payload}")
            return payload


async def rest_bars(rest_url: str, symbol: str, start_ms: int, end_ms: int) -> Bars:
    """The simulator's unadjusted REST minute bars of ``symbol`` with ``start_ms <= t <= end_ms``
    (the pipeline stores bars unadjusted)."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    url: str | None = f"{rest_url}/v2/aggs/ticker/{symbol}/range/1/minute/{start_ms}/{end_ms}"
    params: dict[str, str] | None = {"limit": "50000", "sort": "asc", "adjusted": "false"}
    bars: Bars = {}
    async with aiohttp.ClientSession() as session:
        while url:
            async with session.get(url, params=params, headers=headers) as resp:
                body = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"simulator REST: {resp.status} {body}")
            for b in body.get("results", []):
                ts = datetime.fromtimestamp(b["t"] / 1000, tz=UTC)
                bars[(symbol, ts)] = (b["o"], b["h"], b["l"], b["c"], b["v"])
            url, params = body.get("next_url"), None
    return bars


async def stored_bars(settings: Settings, symbols: list[str]) -> tuple[Bars, dict[Key, str]]:
    """Every 1m row of ``symbols`` in PostgreSQL: values, and source by key."""
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value(), timeout=10)
    try:
        rows = await conn.fetch(
            f"SELECT symbol, ts, open, high, low, close, volume, source "
            f'FROM "{settings.postgres_schema}".bars WHERE tf = $1 AND symbol = ANY($2)',
            "1m",
            symbols,
        )
    except asyncpg.UndefinedTableError:
        rows = []
    finally:
        await conn.close()
    values = {
        (r["symbol"], r["ts"]): tuple(
            float(r[k]) for k in ("open", "high", "low", "close", "volume")
        )
        for r in rows
    }
    return values, {(r["symbol"], r["ts"]): r["source"] for r in rows}


async def duplicate_envelopes(settings: Settings) -> tuple[int, int]:
    """Envelopes on the bar topics, and how many repeat an earlier one byte for byte."""
    total, seen = 0, Counter[tuple[str, bytes]]()
    for tf in TIMEFRAMES:
        for record in await read_to_end(settings, settings.topic(f"bars.{tf}")):
            total += 1
            try:
                key = str(orjson.loads(record.value)["dedup_key"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            seen[(key, record.value)] += 1
    return total, sum(n - 1 for n in seen.values())


async def outage(
    pair: PrivateStack, name: ServiceName, seconds: float, log: Callable[[str], None]
) -> None:
    log(f"{name} stopped for {seconds:.0f}s")
    await pair.stop(name)
    try:
        await asyncio.sleep(seconds)
    finally:
        await pair.start(name)
    log(f"{name} started again")


async def chaos(
    cluster: Cluster, pair: PrivateStack, args: argparse.Namespace, log: Callable[[str], None]
) -> None:
    async def kill_and_restart(name: str, why: str) -> None:
        cluster.workers[name].kill()
        log(f"SIGKILL {name} ({why}); starting it again")
        await cluster.start_ready(name)
        log(f"{name} ready again")

    steps: list[Callable[[], Awaitable[None]]] = [
        lambda: kill_and_restart("worker-1", "a crash"),
        lambda: _join(cluster, log),
        lambda: outage(pair, "postgres", args.postgres_outage_s, log),
        lambda: outage(pair, "redis", args.redis_outage_s, log),
        lambda: kill_and_restart(cluster.streaming() or "worker-2", "it holds the WebSocket"),
        lambda: _leave(cluster, log),
    ]
    for step in steps:
        await asyncio.sleep(args.pause_s)
        await step()


async def _join(cluster: Cluster, log: Callable[[str], None]) -> None:
    log("worker-3 joins")
    await cluster.start_ready("worker-3")
    log("worker-3 ready")


async def _leave(cluster: Cluster, log: Callable[[str], None]) -> None:
    leaving = cluster.workers.pop("worker-3")
    cluster.gone.append(leaving)
    code = await asyncio.to_thread(leaving.stop)
    log(f"worker-3 left (SIGTERM, exit code {code})")


def compare(expected: Bars, stored: Bars) -> tuple[list[Key], list[Key], list[Key]]:
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    different = sorted(k for k in set(expected) & set(stored) if expected[k] != stored[k])
    return missing, extra, different


Window = tuple[str, datetime, datetime]  # symbol, first minute, end (exclusive)


async def stream_windows(
    rest_url: str, rows: Bars, symbols: list[str], stopped_at: datetime
) -> tuple[list[Window], Bars]:
    """Per symbol, from its first whole streamed minute to the stopped clock's minute; and
    REST's bars in those windows."""
    live_from = datetime.fromisoformat(CLOCK_START)
    end = stopped_at.replace(second=0, microsecond=0)
    windows: list[Window] = []
    expected: Bars = {}
    for symbol in symbols:
        streamed = sorted(ts for s, ts in rows if s == symbol and ts >= live_from)
        if not streamed:
            continue
        first = streamed[0] + timedelta(minutes=1)  # the first minute was joined halfway
        windows.append((symbol, first, end))
        expected.update(
            await rest_bars(
                rest_url, symbol, int(first.timestamp() * 1000), int(end.timestamp() * 1000) - 1
            )
        )
    return windows, expected


async def run(args: argparse.Namespace, folder: Path) -> int:
    started = time.monotonic()

    def log(line: str) -> None:
        say(started, line)

    symbols = SYMBOLS[: args.symbols]
    tag = uuid.uuid4().hex[:8]
    first_day = datetime.fromtimestamp(ms(args.start) / 1000, tz=UTC)
    last_day = datetime.fromtimestamp(ms(args.end, end_of_day=True) / 1000, tz=UTC)
    pair = await PrivateStack.create(Settings())
    log(f"private PostgreSQL and Redis in {pair.root}; logs in {folder}")
    sim, rest_url = await asyncio.to_thread(start_sim, folder, symbols, args.speed)
    settings = pair.settings.with_overrides(
        topic_prefix=f"chaos{tag}",
        app_id=f"chronox-chaos-{tag}",
        web_enabled=False,  # several workers on one host: the default port would clash
        postgres_schema=f"chaos{tag}",
        redis_prefix=f"chaos{tag}:",
        topic_partitions=4,
        polygon_rest_url=rest_url,
        polygon_ws_url=rest_url.replace("http://", "ws://") + "/stocks",
        polygon_api_key=API_KEY,
        tick_timeframes="1m",
        log_level="INFO",
    )
    cluster = Cluster(settings, folder)
    try:
        await sim_call(rest_url, "POST", "/_sim/knobs", {"late_trades": False})
        backfill: Bars = {}
        for symbol in symbols:
            backfill.update(
                await rest_bars(rest_url, symbol, ms(args.start), ms(args.end, end_of_day=True))
            )
        throttle = args.throttle_ms
        if throttle is None:  # each symbol's backfill lasts about as long as the chaos
            chaos_s = 6 * args.pause_s + 60 + args.postgres_outage_s + args.redis_outage_s
            throttle = max(1, int(1000 * chaos_s * len(symbols) / max(1, len(backfill))))
        await ensure_topics(settings)
        await cluster.start_ready("worker-1", "worker-2")
        log(
            f"2 workers ready; backfill of {len(symbols)} symbols {args.start}..{args.end} "
            f"(api, 1m, throttle {throttle} ms) and a stream at {args.speed:g}x"
        )
        request = {
            "request_id": f"chaos-{tag}",
            "symbols": symbols,
            "strategy": "api",
            "timeframe": "1m",
            "start": args.start,
            "end": args.end,
            "throttle_ms": throttle,
        }
        following = asyncio.create_task(
            follow(
                settings,
                request["request_id"],
                lambda: send_request(settings, request),
                timeout_s=args.timeout_s,
            )
        )
        await send_request(
            settings, {"request_id": f"chaos-live-{tag}", "symbols": symbols, "strategy": "stream"}
        )
        await chaos(cluster, pair, args, log)
        outcome: Outcome = await following
        log(
            f"backfill {'finished' if outcome.complete else 'NOT finished'}"
            + (f"; failures: {outcome.failures}" if outcome.failures else "")
        )
        await asyncio.sleep(args.settle_s)
        clock = await sim_call(rest_url, "POST", "/_sim/clock", {"speed": 0})
        stopped_at = datetime.fromtimestamp(clock["now_ns"] / 1e9, tz=UTC)
        log(f"simulator clock stopped at {stopped_at:%H:%M:%S} UTC; waiting for the sink")
        expected, stored, sources = await settle(
            rest_url, settings, symbols, (first_day, last_day, backfill), stopped_at
        )
        total, duplicates = await duplicate_envelopes(settings)
        log("compared")
    finally:
        cluster.stop_all()
        sim.stop()
        await delete_topics(settings)
        await pair.close()
    missing, extra, different = compare(expected, stored)
    print()
    print(
        f"bars expected:        {len(expected):,} (backfill {len(backfill):,}, "
        f"stream {len(expected) - len(backfill):,})"
    )
    print(f"bars stored:          {len(stored):,}")
    print(f"missing:              {len(missing):,}  {_first(missing)}")
    print(f"extra:                {len(extra):,}  {_first(extra)}")
    print(f"different:            {len(different):,}  {_first(different)}")
    print(f"envelopes on Kafka:   {total:,}")
    print(f"duplicate envelopes:  {duplicates:,} (same dedup_key, identical content)")
    by_source = Counter(sources[k] for k in stored)
    print("stored by source:     " + ", ".join(f"{s}={n:,}" for s, n in sorted(by_source.items())))
    return 1 if missing or extra or different else 0


def _first(keys: list[Key]) -> str:
    return ", ".join(f"{s} {ts:%Y-%m-%d %H:%M}" for s, ts in keys[:3])


async def settle(
    rest_url: str,
    settings: Settings,
    symbols: list[str],
    backfill: tuple[datetime, datetime, Bars],
    stopped_at: datetime,
) -> tuple[Bars, Bars, dict[Key, str]]:
    """Poll PostgreSQL until the compared ranges hold what is expected, or until nothing
    changed for 30 s; return expected, stored (in those ranges) and the rows' sources."""
    first_day, last_day, bars = backfill
    last_change, previous = time.monotonic(), -1
    while True:
        rows, sources = await stored_bars(settings, symbols)
        windows, live = await stream_windows(rest_url, rows, symbols, stopped_at)
        expected = {**bars, **live}

        stored = {k: v for k, v in rows.items() if _compared(k, (first_day, last_day), windows)}
        if len(rows) != previous:
            last_change, previous = time.monotonic(), len(rows)
        if not any(compare(expected, stored)) or time.monotonic() - last_change > 30:
            return expected, stored, sources
        await asyncio.sleep(2)


def _compared(key: Key, days: tuple[datetime, datetime], windows: list[Window]) -> bool:
    """True when ``key`` lies in the backfill's days or in its symbol's stream window."""
    symbol, ts = key
    return days[0] <= ts <= days[1] or any(
        s == symbol and start <= ts < end for s, start, end in windows
    )


def main() -> int:
    args = _args()
    folder = Path(tempfile.mkdtemp(prefix="chronox-chaos-"))
    code = 1
    try:
        code = asyncio.run(run(args, folder))
    finally:
        if code == 0:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"worker and simulator logs kept in {folder}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
