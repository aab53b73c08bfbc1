"""The ``chronox`` command line: worker, ingest, sim, stack, db, demo.

Every command builds the one ``Settings`` object from the environment and lets
its flags override individual fields. Whatever a command fails with is printed
without the configured secrets (``RedactingGroup``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from importlib import import_module
from typing import Any

import click
from pydantic import ValidationError

from chronox_stream.runtime.logs import redact, secret_values
from chronox_stream.settings import Settings


def _settings(**overrides: Any) -> Settings:
    """The settings, with the extra sources they name declared (a request naming one is
    checked here as a worker would, and ``db migrate`` admits its rows)."""
    from chronox_stream.sources.registry import import_source_modules

    settings = Settings().with_overrides(**overrides)
    import_source_modules(settings.source_modules)
    return settings


def _configured_secrets() -> list[str]:
    """The environment's secrets; none when the settings do not validate (and then the
    error names the setting that is wrong, never a secret's value)."""
    try:
        return secret_values(Settings())
    except ValidationError:
        return []


class RedactingGroup(click.Group):
    """The ``chronox`` group: an error message or an uncaught exception's traceback (a
    DSN in a driver's error, a key in a URL) is printed with every secret as ``***``.

    The ``sim`` and ``stack`` commands live in their own packages and are imported only
    when one of them runs (or help lists them): a worker's start does not pay for them.
    """

    lazy = {"sim": "chronox_stream.sim.cli", "stack": "chronox_stream.stack.cli"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            command: click.Command = getattr(import_module(self.lazy[cmd_name]), cmd_name)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:
            error.message = redact(error.message, _configured_secrets())
            raise
        except (click.exceptions.Exit, click.Abort):
            raise  # a command's own exit code (``ctx.exit``) or Ctrl-C: no traceback
        except Exception:
            click.echo(redact(traceback.format_exc(), _configured_secrets()), err=True, nl=False)
            ctx.exit(1)


@click.group(cls=RedactingGroup)
@click.version_option(package_name="chronox-stream")
def main() -> None:
    """chronox-stream: Kafka-native ingestion of OHLCV bars."""


@main.command()
@click.option("--kafka-bootstrap", help="Kafka bootstrap servers [CHRONOX_KAFKA_BOOTSTRAP].")
@click.option("--app-id", help="Faust app id / consumer group [CHRONOX_APP_ID].")
@click.option("--topic-prefix", help="Topic name prefix [CHRONOX_TOPIC_PREFIX].")
@click.option("--data-dir", type=click.Path(), help="Table store folder [CHRONOX_DATA_DIR].")
@click.option("--web-port", type=int, help="Faust web port [CHRONOX_WEB_PORT].")
@click.option("--web-bind", help="Address the web server listens on [CHRONOX_WEB_BIND].")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="[CHRONOX_LOG_FORMAT]")
def worker(**overrides: Any) -> None:
    """Run one worker of the consumer group (run as many as you need)."""
    from chronox_stream.runtime.web_server import PortTaken, check_port
    from chronox_stream.runtime.worker import run_worker
    from chronox_stream.sources.urls import UnsafeUrl, check_settings

    settings = _settings(**overrides)
    try:
        check_settings(settings)
        check_port(settings)
    except (UnsafeUrl, PortTaken) as refused:
        raise click.ClickException(str(refused)) from None
    run_worker(settings)


def ingest_parser() -> argparse.ArgumentParser:
    """The flags of ``chronox ingest`` (the README's table), parsed by argparse so that a list
    takes several words (``--symbols A B C``)."""
    parser = argparse.ArgumentParser(
        prog="chronox ingest", description="Send a backfill request to the control topic."
    )
    parser.add_argument("--strategy", help="'+'-joined phases: flatpack, api, snapshot, stream")
    parser.add_argument("--snapshot-method", choices=["rest", "agg", "snapshot"])
    parser.add_argument("--publish-mode", choices=["kafka-first", "db-first"])
    parser.add_argument("--no-stream", action="store_true", help="drop the stream phase")
    parser.add_argument("--symbols", nargs="+", help="symbols to backfill")
    parser.add_argument("--timeframe", default="1m")
    parser.add_argument("--throttle-ms", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="fetch and report, write nothing")
    parser.add_argument(
        "--start", help="New York trading date YYYY-MM-DD or ISO-8601 time (default: lookback)"
    )
    parser.add_argument(
        "--end", help="New York trading date YYYY-MM-DD (inclusive) or ISO-8601 time (default: now)"
    )
    parser.add_argument("--request-id", help="id to track the request (default: generated)")
    parser.add_argument("--wait", action="store_true", help="follow the request to completion")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds --wait waits (default 3600)"
    )
    return parser


def request_from_args(args: argparse.Namespace, request_id: str) -> dict[str, Any]:
    """The control message for parsed ``ingest`` flags: only what the user set, plus defaults."""
    request: dict[str, Any] = {
        "request_id": args.request_id or request_id,
        "timeframe": args.timeframe,
        "throttle_ms": args.throttle_ms,
        "dry_run": args.dry_run,
    }
    if args.no_stream:
        request["enable_stream"] = False
    for key in ("symbols", "strategy", "snapshot_method", "publish_mode", "start", "end"):
        if getattr(args, key) is not None:
            request[key] = getattr(args, key)
    return request


def _check_request(request: dict[str, Any]) -> None:
    """Refuse here what a worker would dead-letter, with the same parser and message."""
    from datetime import UTC, datetime

    import orjson

    from chronox_stream.contracts.control import parse_backfill_request
    from chronox_stream.contracts.rejects import Rejected

    try:
        parse_backfill_request(orjson.dumps(request), now=datetime.now(UTC))
    except Rejected as rejected:
        raise click.UsageError(f"{rejected.message} ({rejected.reason})") from None


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def ingest(ctx: click.Context) -> None:
    """Send a backfill request to the control topic (flags: chronox ingest --help)."""
    from chronox_stream.client.follow import follow, progress_bar
    from chronox_stream.client.ingest import new_request_id, send_request

    args = ingest_parser().parse_args(ctx.args)
    settings = _settings()
    request = request_from_args(args, new_request_id())
    _check_request(request)
    scope = f"{len(args.symbols)} symbol(s)" if args.symbols else "registry symbols"
    if not args.wait:
        asyncio.run(send_request(settings, request))
        click.echo(f"sent {request['request_id']} ({scope})")
        return
    with progress_bar() as progress:
        outcome = asyncio.run(
            follow(settings, request["request_id"], lambda: send_request(settings, request),
                   timeout_s=args.timeout, progress=progress)
        )  # fmt: skip
    verb = "would be emitted (dry run)" if args.dry_run else "emitted"
    click.echo(f"{request['request_id']}: {outcome.bars} bar(s) {verb}")
    if not outcome.complete:
        raise click.ClickException(f"not finished after {args.timeout:.0f}s")
    if outcome.failures:
        raise click.ClickException("phase(s) failed:\n  " + "\n  ".join(outcome.failures))


@main.command()
def status() -> None:
    """Per symbol: strategy, last backfill/snapshot/stream, open gaps, streaming; consumer lag."""
    from datetime import UTC, datetime

    from chronox_stream.client.status import gather, render

    click.echo(render(asyncio.run(gather(_settings(), datetime.now(UTC)))))


@main.group()
def registry() -> None:
    """The symbol registry: which symbols registry-driven runs cover, and how."""


def _send_registry(commands: list[Any]) -> None:
    from chronox_stream.client.registry import send_commands

    asyncio.run(send_commands(_settings(), commands))


def _registry_command(op: str, symbols: tuple[str, ...], **fields: Any) -> list[Any]:
    """Validated commands (the same parser the worker applies, with the same declared
    sources), one per symbol."""
    from chronox_stream.contracts.rejects import Rejected
    from chronox_stream.domain.registry import RegistryCommand, parse_command

    _settings()  # declares the extra sources a strategy may name
    commands = []
    for symbol in symbols:
        raw = RegistryCommand(op=op, symbol=symbol, **fields).to_json()  # type: ignore[arg-type]
        try:
            commands.append(parse_command(raw))
        except Rejected as rejected:
            raise click.BadParameter(rejected.message) from None
    return commands


@registry.command("add")
@click.argument("symbols", nargs=-1, required=True)
@click.option("--strategy", help="'+'-joined phases (default: flatpack+api+snapshot+stream).")
@click.option("--disabled", is_flag=True, help="Register without enabling.")
def registry_add(symbols: tuple[str, ...], strategy: str | None, disabled: bool) -> None:
    """Register (or update the strategy of) SYMBOLS."""
    _send_registry(_registry_command("add", symbols, strategy=strategy, enabled=not disabled))
    click.echo(f"registered {' '.join(symbols)}")


@registry.command("enable")
@click.argument("symbols", nargs=-1, required=True)
def registry_enable(symbols: tuple[str, ...]) -> None:
    """Include SYMBOLS in registry-driven runs."""
    _send_registry(_registry_command("enable", symbols))


@registry.command("disable")
@click.argument("symbols", nargs=-1, required=True)
def registry_disable(symbols: tuple[str, ...]) -> None:
    """Leave SYMBOLS out of registry-driven runs (state is kept)."""
    _send_registry(_registry_command("disable", symbols))


@registry.command("remove")
@click.argument("symbols", nargs=-1, required=True)
def registry_remove(symbols: tuple[str, ...]) -> None:
    """Forget SYMBOLS."""
    _send_registry(_registry_command("remove", symbols))


@registry.command("list")
def registry_list() -> None:
    """Print every registered symbol with its strategy, status and phase timestamps."""
    from chronox_stream.client.registry import read_entries

    def when(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    entries = asyncio.run(read_entries(_settings()))
    click.echo(
        f"{'symbol':<8} {'strategy':<30} {'on':<3} {'status':<8} "
        f"{'last_backfill':<17} {'last_snapshot':<17} {'last_stream':<17} last_error"
    )
    for e in entries:
        click.echo(
            f"{e.symbol:<8} {e.strategy:<30} {'yes' if e.enabled else 'no':<3} {e.status:<8} "
            f"{when(e.last_backfill):<17} {when(e.last_snapshot):<17} {when(e.last_stream):<17} "
            f"{e.last_error or ''}"
        )


@main.group()
def db() -> None:
    """PostgreSQL schema management."""


@db.command()
def migrate() -> None:
    """Create the schema, the bars and splits tables and the adjusted read path (idempotent)."""
    from chronox_stream.sinks.postgres import PostgresSink

    async def run(settings: Settings) -> None:
        sink = await PostgresSink.connect(
            settings.postgres_dsn.get_secret_value(),
            schema=settings.postgres_schema,
            timeout_s=settings.postgres_timeout_s,
        )
        try:
            await sink.migrate()
        finally:
            await sink.close()

    settings = _settings()
    asyncio.run(run(settings))
    click.echo(f"schema {settings.postgres_schema} is up to date")


@main.command()
@click.option("--days", type=int, default=3, show_default=True, help="Days of 1m bars to backfill.")
def demo(days: int) -> None:
    """Stack up, simulator, one worker, a backfill of a few symbols; print what landed."""
    from chronox_stream.client.demo import run_demo

    summary = run_demo(_settings(), days=days)
    click.echo(summary.render())
    click.echo("the stack is still up: `chronox stack down` stops it")
    if summary.postgres_rows == 0 or summary.redis_messages == 0:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(main())
