"""``chronox sim``: run the Polygon-compatible simulator (flags override ``Settings()``).

Flags without a value fall back to the one settings object (``CHRONOX_SIM_*``,
``CHRONOX_POLYGON_API_KEY``, ``CHRONOX_S3_*``). The key and the S3 secret are
never echoed; prefer the environment to ``--api-key`` on shared machines.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

import click

from chronox_stream.settings import Settings
from chronox_stream.sim.admin import parse_moment
from chronox_stream.sim.corporate import DEFAULT_SPLITS_SPEC, Split, parse_split
from chronox_stream.sim.knobs import Knobs
from chronox_stream.sim.server import SimConfig, serve

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA")


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    if value is None:
        return time.time_ns()
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value is not None else None
    except ValueError:
        raise click.BadParameter(f"{value!r} is not YYYY-MM-DD") from None


def _days(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> frozenset[date]:
    return frozenset(d for v in value if (d := _day(ctx, param, v)) is not None)


def _symbols(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in value.split(",") if s.strip()))
    if not symbols:
        raise click.BadParameter("at least one symbol")
    return symbols


def _splits(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[Split, ...]:
    try:
        return tuple(parse_split(v) for v in value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("sim")
@click.option("--host", help="Bind address [CHRONOX_SIM_HOST].")
@click.option("--port", type=int, help="REST + WebSocket port [CHRONOX_SIM_PORT].")
@click.option("--s3-port", type=int, help="S3 (flat files) port [CHRONOX_SIM_S3_PORT].")
@click.option("--seed", type=int, help="Seed of the market [CHRONOX_SIM_SEED].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Flat-file cache folder [CHRONOX_SIM_DATA_DIR].",
)
@click.option(
    "--api-key",
    help="Key REST and WebSocket require; empty accepts any key or none [CHRONOX_POLYGON_API_KEY].",
)
@click.option(
    "--clock-start",
    callback=_moment,
    metavar="ISO8601",
    help="Sim-now at startup, e.g. 2024-01-17T21:00:00Z [default: real now].",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Sim seconds per real second (0 freezes the clock).",
)
@click.option(
    "--symbols",
    default=",".join(DEFAULT_SYMBOLS),
    show_default=True,
    callback=_symbols,
    help="Symbol universe of the flat files and of '*' subscriptions.",
)
@click.option("--flatfiles-from", callback=_day, metavar="YYYY-MM-DD", help="First flat-file day.")
@click.option("--flatfiles-to", callback=_day, metavar="YYYY-MM-DD", help="Last flat-file day.")
@click.option(
    "--flatfiles/--no-flatfiles",
    default=True,
    show_default=True,
    help="Generate flat files and run the S3 endpoint.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="REST requests per minute per key, then 429 (0: no limit).",
)
@click.option(
    "--fail-next",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Answer the next N REST requests with --fail-status.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Probability of --fail-status per REST request (seeded).",
)
@click.option(
    "--fail-status",
    type=int,
    default=500,
    show_default=True,
    help="Status of injected failures (a 5xx).",
)
@click.option(
    "--malformed-next",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Truncate the next N aggregates bodies (invalid JSON).",
)
@click.option(
    "--page-size",
    type=click.IntRange(min=1),
    help="Cap on 'limit' of aggregates (forces pagination).",
)
@click.option(
    "--missing-day",
    "missing_days",
    multiple=True,
    callback=_days,
    metavar="YYYY-MM-DD",
    help="Leave this day out of the bucket (repeatable).",
)
@click.option(
    "--late-trades/--no-late-trades",
    default=True,
    show_default=True,
    help="Deliver some trades late on the WebSocket (corrected AM).",
)
@click.option(
    "--forbid-ticker",
    "forbidden",
    multiple=True,
    help="Answer REST requests for this ticker with 403 (repeatable).",
)
@click.option(
    "--ws-drop-after",
    type=click.IntRange(min=1),
    help="Close each WebSocket after it received N events.",
)
@click.option(
    "--ws-max-connections",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="WebSocket connections per key; a newer one kicks the oldest off.",
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    callback=_splits,
    metavar="SYMBOL:YYYY-MM-DD:FROM:TO",
    help=f"A stock split, e.g. NVDA:2024-01-12:1:4 for 4-for-1 (repeatable; replaces the "
    f"default {' '.join(DEFAULT_SPLITS_SPEC)}).",
)
@click.option(
    "--no-splits",
    is_flag=True,
    default=False,
    help="A market without splits (not even the default one).",
)
def sim(
    host: str | None,
    port: int | None,
    s3_port: int | None,
    seed: int | None,
    data_dir: Path | None,
    api_key: str | None,
    clock_start: int,
    speed: float,
    symbols: tuple[str, ...],
    flatfiles_from: date | None,
    flatfiles_to: date | None,
    flatfiles: bool,
    rate_limit: int,
    fail_next: int,
    fail_rate: float,
    fail_status: int,
    malformed_next: int,
    page_size: int | None,
    missing_days: frozenset[date],
    late_trades: bool,
    forbidden: tuple[str, ...],
    ws_drop_after: int | None,
    ws_max_connections: int,
    splits: tuple[Split, ...],
    no_splits: bool,
) -> None:
    """A deterministic Polygon.io-compatible market on loopback: REST, WebSocket, S3 flat files."""
    settings = Settings().with_overrides(
        sim_host=host, sim_port=port, sim_s3_port=s3_port, sim_seed=seed, sim_data_dir=data_dir
    )
    try:
        knobs = Knobs(
            api_key=settings.polygon_api_key.get_secret_value() if api_key is None else api_key,
            rate_limit=rate_limit,
            fail_next=fail_next,
            fail_rate=fail_rate,
            fail_status=fail_status,
            malformed_next=malformed_next,
            page_size=page_size,
            missing_days=missing_days,
            late_trades=late_trades,
            forbidden_tickers=frozenset(t.upper() for t in forbidden),
            ws_drop_after=ws_drop_after,
            ws_max_connections=ws_max_connections,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    config = SimConfig(
        host=settings.sim_host,
        port=settings.sim_port,
        s3_port=settings.sim_s3_port,
        seed=settings.sim_seed,
        data_dir=settings.sim_data_dir,
        bucket=settings.s3_bucket,
        s3_access_key=settings.s3_access_key.get_secret_value(),
        s3_secret_key=settings.s3_secret_key.get_secret_value(),
        clock_start_ns=clock_start,
        speed=speed,
        symbols=symbols,
        flatfiles=flatfiles,
        flatfiles_from=flatfiles_from,
        flatfiles_to=flatfiles_to,
        knobs=knobs,
        splits=_market_splits(splits, no_splits),
    )
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        raise click.ClickException(f"cannot serve: {exc.strerror or exc}") from None


def _market_splits(given: tuple[Split, ...], none: bool) -> tuple[Split, ...]:
    if none and given:
        raise click.UsageError("--no-splits and --split exclude each other")
    if none:
        return ()
    return given or tuple(parse_split(spec) for spec in DEFAULT_SPLITS_SPEC)
