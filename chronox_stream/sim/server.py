"""The simulator process: one market behind REST + WebSocket (aiohttp) and S3 (moto).

Start order: the flat files are generated (or found in the cache) and
uploaded, then the HTTP server binds; only then is the one ``listening``
line printed, so whoever waits for it finds every interface ready. The
process serves until SIGINT or SIGTERM, then closes WebSockets, the HTTP
server and the S3 server. Nothing printed or logged carries the API key or
the S3 secret (the aiohttp access log, which would show ``apiKey=``, is off).
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from chronox_stream.sim.admin import Admin
from chronox_stream.sim.clock import SimClock
from chronox_stream.sim.corporate import Split
from chronox_stream.sim.flatfiles import next_publication_ns, planned_days
from chronox_stream.sim.gate import RateLimiter, RequestIds, RequestLog, polygon_gate
from chronox_stream.sim.knobs import KnobBoard, Knobs
from chronox_stream.sim.market import Market
from chronox_stream.sim.rest import PolygonRest
from chronox_stream.sim.s3 import FlatFileBucket, client_host
from chronox_stream.sim.sessions import NS_PER_S, from_ns, trading_day
from chronox_stream.sim.ws import WsHub

#: Real seconds between checks of the bucket at most (it also wakes at each publication).
REFRESH_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    host: str
    port: int
    s3_port: int
    seed: int
    data_dir: Path
    bucket: str
    s3_access_key: str = field(repr=False)
    s3_secret_key: str = field(repr=False)
    clock_start_ns: int
    speed: float
    symbols: tuple[str, ...]
    flatfiles: bool
    flatfiles_from: date | None
    flatfiles_to: date | None
    knobs: Knobs
    splits: tuple[Split, ...] = ()


class Simulator:
    """Every part of one simulator, wired; :meth:`start` then :meth:`stop`."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.market = Market(config.seed, config.splits)
        self.clock = SimClock(config.clock_start_ns, config.speed)
        self.board = KnobBoard(config.knobs, config.seed)
        self.hub = WsHub(self.market, self.clock, self.board, config.symbols)
        self.requests = RequestLog()
        self.bucket: FlatFileBucket | None = None
        if config.flatfiles:
            self.bucket = FlatFileBucket(
                host=config.host,
                port=config.s3_port,
                bucket=config.bucket,
                access_key=config.s3_access_key,
                secret_key=config.s3_secret_key,
                market=self.market,
                symbols=config.symbols,
                data_dir=config.data_dir,
            )
        self._runner: web.AppRunner | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._flatfiles_from = config.flatfiles_from

    def _app(self) -> web.Application:
        limiter = RateLimiter()
        self.board.listen(limiter.on_knobs)
        app = web.Application(
            middlewares=[
                polygon_gate(self.board, RequestIds(self.config.seed), limiter, self.requests)
            ]
        )
        app.add_routes(PolygonRest(self.market, self.clock, self.board).routes())
        app.add_routes(
            Admin(
                self.board, self.clock, self.hub, self.info, self._sync_flatfiles, self.requests
            ).routes()
        )
        app.router.add_get("/stocks", self.hub.handle)

        async def close_websockets(_: web.Application) -> None:
            await self.hub.shutdown()

        app.on_shutdown.append(close_websockets)
        return app

    def info(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "symbols": list(self.config.symbols),
            "bucket": self.config.bucket if self.bucket else None,
            "flatfile_days": [d.isoformat() for d in self.bucket.days] if self.bucket else [],
            "splits": [s.json() for s in self.config.splits],
        }

    def _planned(self) -> list[date]:
        return planned_days(
            self.clock.now_ns(),
            self._flatfiles_from,
            self.config.flatfiles_to,
            self.board.current.flatfiles_publish_at,
        )

    async def _sync_flatfiles(self) -> None:
        """Make the bucket hold the days published by sim-now (also after the clock moved)."""
        if self.bucket is not None:
            await self.bucket.sync(self._planned(), self.board.current.missing_days)

    async def _on_knobs(self, old: Knobs, new: Knobs) -> None:
        if (old.missing_days, old.flatfiles_publish_at) != (
            new.missing_days,
            new.flatfiles_publish_at,
        ):
            await self._sync_flatfiles()

    def _until_next_publication_s(self) -> float:
        """Real seconds until the next day is due in the bucket, capped at ``REFRESH_S``."""
        now = self.clock.now_ns()
        due = next_publication_ns(now, self.board.current.flatfiles_publish_at)
        if due is None or self.clock.speed == 0:
            return REFRESH_S
        return min(REFRESH_S, max(0.01, (due - now) / NS_PER_S / self.clock.speed))

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._until_next_publication_s())
            await self._sync_flatfiles()

    async def start(self) -> None:
        await asyncio.to_thread(trading_day, from_ns(self.config.clock_start_ns).date())
        if self.bucket is not None:
            if self._flatfiles_from is None:  # the default five days, then every later one
                self._flatfiles_from = next(iter(self._planned()), None)
            await asyncio.to_thread(self.bucket.start)
            await self._sync_flatfiles()
            self.board.listen(self._on_knobs)
            self._refresher = asyncio.create_task(self._refresh())
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.config.host, self.config.port).start()

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.bucket is not None:
            await asyncio.to_thread(self.bucket.stop)

    def banner(self) -> str:
        """The one startup line: where everything listens (no secrets)."""
        c = self.config
        host = client_host(c.host)
        s3 = f"S3 http://{host}:{c.s3_port} bucket {c.bucket}" if self.bucket else "S3 off"
        return (
            f"chronox sim listening: REST http://{host}:{c.port} | WS ws://{host}:{c.port}/stocks"
            f" | {s3} | seed {c.seed}, clock {from_ns(c.clock_start_ns).isoformat()}"
            f" x{c.speed:g}, symbols {','.join(c.symbols)}"
        )


async def serve(config: SimConfig) -> None:
    """Run a simulator until SIGINT or SIGTERM."""
    simulator = Simulator(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await simulator.start()
        print(simulator.banner(), flush=True)
        await stop.wait()
    finally:
        await simulator.stop()
