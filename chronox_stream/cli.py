"""The ``chronox`` command line: worker, ingest, status, registry, dlq, config, sim, stack,
db, demo.

Every command builds the one ``Settings`` object from the environment and lets
its flags override individual fields. Whatever a command fails with is printed
without the configured secrets (``RedactingGroup``); a service it cannot reach is
one line and an exit code of its own (``client/reach.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import traceback
from importlib import import_module
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import ValidationError

from chronox_stream.client.options import (
    KAFKA_SETTINGS,
    add_setting_arguments,
    json_option,
    kafka_options,
)
from chronox_stream.runtime.logs import redact, secret_values
from chronox_stream.settings import Settings

#: Where a command leaves the settings it runs with (``ctx.meta``), for its error messages.
SETTINGS_META = "chronox.settings"


def _invalid(error: ValidationError) -> click.UsageError:
    """An invalid setting as a usage error naming the setting, never its value."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
    )
    return click.UsageError(f"invalid setting: {problems}")


def _settings(**overrides: Any) -> Settings:
    """The settings, with the extra sources they name declared (a request naming one is
    checked here as a worker would, and ``db migrate`` admits its rows)."""
    from chronox_stream.sources.registry import import_source_modules

    try:
        settings = Settings().with_overrides(**overrides)
    except ValidationError as error:
        raise _invalid(error) from None
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[SETTINGS_META] = settings
    import_source_modules(settings.source_modules)
    return settings


def _configured_secrets(ctx: click.Context) -> list[str]:
    """The secrets of the command's settings (flags included) and of the environment; none
    when the settings do not validate (and then the error names the setting that is wrong,
    never a secret's value)."""
    secrets = []
    used = ctx.meta.get(SETTINGS_META)
    if isinstance(used, Settings):
        secrets += secret_values(used)
    try:
        secrets += secret_values(Settings())
    except ValidationError:
        pass
    return secrets


def _echo_json(document: object) -> None:
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


class RedactingGroup(click.Group):
    """The ``chronox`` group: an error message or an uncaught exception's traceback (a
    DSN in a driver's error, a key in a URL) is printed with every secret as ``***``; a
    service the command could not reach is one line with its exit code (3 Kafka,
    4 PostgreSQL, 5 Redis).

    The ``sim`` and ``stack`` commands live in their own packages and are imported only
    when one of them runs: neither a worker's start nor ``chronox --help`` pays for them
    (help lists them with the summaries below). ``sim`` needs the ``[sim]`` extra.
    """

    lazy = {"sim": "chronox_stream.sim.cli", "stack": "chronox_stream.stack.cli"}
    summaries = {
        "sim": "The Polygon-compatible simulator (the [sim] extra).",
        "stack": "The local Kafka, PostgreSQL and Redis (127.0.0.1 only).",
    }
    needs_sim = frozenset({"sim", "demo"})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.needs_sim and (why := _sim_missing(cmd_name)):
            return _refusal(cmd_name, why)
        if cmd_name in self.lazy:
            command: click.Command = getattr(import_module(self.lazy[cmd_name]), cmd_name)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, without importing the lazy commands for their summaries."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.lazy:
                rows.append((name, self.summaries[name]))
            elif (command := super().get_command(ctx, name)) is not None:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:
            error.message = redact(error.message, _configured_secrets(ctx))
            raise
        except (click.exceptions.Exit, click.Abort):
            raise  # a command's own exit code (``ctx.exit``) or Ctrl-C: no traceback
        except ValidationError as error:
            raise _invalid(error) from None
        except Exception as error:
            from chronox_stream.client.reach import classify

            used = ctx.meta.get(SETTINGS_META)
            found = classify(error, used) if isinstance(used, Settings) else None
            if found is not None:
                click.echo(redact(f"Error: {found.line()}", _configured_secrets(ctx)), err=True)
                ctx.exit(found.exit_code)
            click.echo(redact(traceback.format_exc(), _configured_secrets(ctx)), err=True, nl=False)
            ctx.exit(1)


def _sim_missing(command: str) -> str | None:
    from chronox_stream.client.extras import sim_extra_error

    return sim_extra_error(command)


def _refusal(command: str, why: str) -> click.Command:
    """A stand-in for a command whose extra is missing: whatever its arguments, it refuses
    with one line (``why``)."""

    @click.command(
        command, context_settings={"ignore_unknown_options": True}, add_help_option=False
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def refuse(args: tuple[str, ...]) -> None:
        raise click.ClickException(why)

    return refuse


@click.group(cls=RedactingGroup)
@click.version_option(package_name="chronox-stream")
def main() -> None:
    """chronox-stream: Kafka-native ingestion of OHLCV bars.

    Exit codes: 0 done, 1 failed, 2 usage or an invalid setting, 3 Kafka unreachable,
    4 PostgreSQL unreachable, 5 Redis unreachable.
    """
    # A command's output is its own lines: the Kafka client's warnings (a broker it cannot
    # reach, a leader moving) would otherwise reach stderr through logging's last resort,
    # beside the one-line error. A worker configures its logging afresh.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@main.command()
@kafka_options
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
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (with --wait: the outcome)"
    )
    add_setting_arguments(parser, KAFKA_SETTINGS)
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
    from chronox_stream.client.follow import follow, outcome_json, progress_bar
    from chronox_stream.client.ingest import new_request_id, send_request

    args = ingest_parser().parse_args(ctx.args)
    settings = _settings(**{name: getattr(args, name) for name in KAFKA_SETTINGS})
    request = request_from_args(args, new_request_id())
    _check_request(request)
    request_id = request["request_id"]
    scope = f"{len(args.symbols)} symbol(s)" if args.symbols else "registry symbols"
    if not args.wait:
        asyncio.run(send_request(settings, request))
        if args.json:
            _echo_json({"request_id": request_id, "sent": True, "symbols": args.symbols})
        else:
            click.echo(f"sent {request_id} ({scope})")
        return

    def run(progress: Any) -> Any:
        return asyncio.run(
            follow(settings, request_id, lambda: send_request(settings, request),
                   timeout_s=args.timeout, progress=progress)
        )  # fmt: skip

    if args.json:
        outcome = run(None)
        _echo_json(outcome_json(request_id, outcome, dry_run=args.dry_run))
        if not outcome.complete or outcome.failures:
            ctx.exit(1)
        return
    with progress_bar() as progress:
        outcome = run(progress)
    verb = "would be emitted (dry run)" if args.dry_run else "emitted"
    click.echo(f"{request_id}: {outcome.bars} bar(s) {verb}")
    if not outcome.complete:
        raise click.ClickException(f"not finished after {args.timeout:.0f}s")
    if outcome.failures:
        raise click.ClickException("phase(s) failed:\n  " + "\n  ".join(outcome.failures))


@main.command()
@kafka_options
@json_option
def status(as_json: bool, **overrides: Any) -> None:
    """Per symbol: strategy, last backfill/snapshot/stream, open gaps, streaming; consumer lag."""
    from datetime import UTC, datetime

    from chronox_stream.client.status import gather, render, report_json

    report = asyncio.run(gather(_settings(**overrides), datetime.now(UTC)))
    if as_json:
        _echo_json(report_json(report))
    else:
        click.echo(render(report))


@main.group()
def registry() -> None:
    """The symbol registry: which symbols registry-driven runs cover, and how."""


def _registry_command(
    settings: Settings, op: str, symbols: tuple[str, ...], **fields: Any
) -> list[Any]:
    """Validated commands (the same parser the worker applies, with the same declared
    sources: ``settings`` imported them), one per symbol."""
    from chronox_stream.contracts.rejects import Rejected
    from chronox_stream.domain.registry import RegistryCommand, parse_command

    commands = []
    for symbol in symbols:
        raw = RegistryCommand(op=op, symbol=symbol, **fields).to_json()  # type: ignore[arg-type]
        try:
            commands.append(parse_command(raw))
        except Rejected as rejected:
            raise click.BadParameter(rejected.message) from None
    return commands


def _send_registry(
    op: str, symbols: tuple[str, ...], overrides: dict[str, Any], as_json: bool, **fields: Any
) -> None:
    """Send ``op`` for each symbol, then confirm what was sent (a line, or ``--json``)."""
    from chronox_stream.client.registry import send_commands

    settings = _settings(**overrides)
    commands = _registry_command(settings, op, symbols, **fields)
    asyncio.run(send_commands(settings, commands))
    sent = [c.symbol for c in commands]
    if as_json:
        _echo_json({"op": op, "symbols": sent, "topic": settings.topic("registry"),
                    **{k: v for k, v in fields.items() if v is not None}})  # fmt: skip
        return
    details = "".join(f", {k} {str(v).lower()}" for k, v in fields.items() if v is not None)
    click.echo(f"sent {op} for {len(sent)} symbol(s){details}: {' '.join(sent)}")


_symbols = click.argument("symbols", nargs=-1, required=True)


@registry.command("add")
@_symbols
@click.option("--strategy", help="'+'-joined phases (default: flatpack+api+snapshot+stream).")
@click.option("--disabled", is_flag=True, help="Register without enabling.")
@kafka_options
@json_option
def registry_add(
    symbols: tuple[str, ...], strategy: str | None, disabled: bool, as_json: bool, **overrides: Any
) -> None:
    """Register (or update the strategy of) SYMBOLS."""
    _send_registry("add", symbols, overrides, as_json, strategy=strategy, enabled=not disabled)


@registry.command("enable")
@_symbols
@kafka_options
@json_option
def registry_enable(symbols: tuple[str, ...], as_json: bool, **overrides: Any) -> None:
    """Include SYMBOLS in registry-driven runs."""
    _send_registry("enable", symbols, overrides, as_json)


@registry.command("disable")
@_symbols
@kafka_options
@json_option
def registry_disable(symbols: tuple[str, ...], as_json: bool, **overrides: Any) -> None:
    """Leave SYMBOLS out of registry-driven runs (state is kept)."""
    _send_registry("disable", symbols, overrides, as_json)


@registry.command("remove")
@_symbols
@kafka_options
@json_option
def registry_remove(symbols: tuple[str, ...], as_json: bool, **overrides: Any) -> None:
    """Forget SYMBOLS."""
    _send_registry("remove", symbols, overrides, as_json)


@registry.command("list")
@kafka_options
@json_option
def registry_list(as_json: bool, **overrides: Any) -> None:
    """Print every registered symbol with its strategy, status and phase timestamps."""
    from chronox_stream.client.registry import entry_json, read_entries

    def when(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    entries = asyncio.run(read_entries(_settings(**overrides)))
    if as_json:
        _echo_json({"symbols": [entry_json(e) for e in entries]})
        return
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


@main.command()
@click.argument("symbols", nargs=-1, required=True)
@click.option("--tf", default="1m", show_default=True, help="Timeframe: 1m 5m 15m 30m 1h 1d.")
@click.option("--start", required=True, help="YYYY-MM-DD (New York date) or ISO-8601 time.")
@click.option("--end", required=True,
              help="YYYY-MM-DD (New York date, inclusive) or ISO-8601 time (exclusive).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]),
              default="table", show_default=True, help="parquet needs --output.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--adjusted", is_flag=True, help="Split-adjusted prices and volumes.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def bars(symbols: tuple[str, ...], tf: str, start: str, end: str, fmt: str, as_json: bool,
         adjusted: bool, output: Path | None) -> None:  # fmt: skip
    """Print the stored bars of SYMBOLS from PostgreSQL (raw, or --adjusted for splits)."""
    from datetime import UTC, datetime

    from chronox_stream.contracts.rejects import Rejected
    from chronox_stream.read import formats
    from chronox_stream.read.query import StoreUnavailable, parse_query, read_bars

    fmt = "json" if as_json else fmt
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a file: give --output FILE")
    if fmt == "table" and output is not None:
        raise click.UsageError("--output takes csv, json or parquet")
    settings = _settings()
    try:
        query = parse_query(symbols, tf, start, end, now=datetime.now(UTC), adjusted=adjusted,
                            max_rows=settings.read_max_rows)  # fmt: skip
    except Rejected as rejected:
        raise click.UsageError(rejected.message) from None
    try:
        rows = asyncio.run(read_bars(settings, query))
    except StoreUnavailable as down:
        from chronox_stream.client.reach import EXIT_CODES, POSTGRES

        click.echo(f"Error: {down}", err=True)
        click.get_current_context().exit(EXIT_CODES[POSTGRES])
    except Rejected as refused:  # more rows than CHRONOX_READ_MAX_ROWS
        raise click.ClickException(refused.message) from None
    if fmt == "table":
        from rich.console import Console

        # Piped, the table keeps its full width rather than a terminal's 80 columns.
        console = Console(width=None if sys.stdout.isatty() else 250)
        console.print(formats.to_table(rows, query.columns))
    elif fmt == "parquet" and output is not None:
        formats.write_parquet(rows, query.columns, output)
    elif output is not None:
        output.write_text(formats.to_text(rows, query.columns, fmt))
    else:
        click.echo(formats.to_text(rows, query.columns, fmt), nl=False)


@main.command()
@click.option("--bind", help="Address to listen on [CHRONOX_SERVE_BIND].")
@click.option("--port", type=int, help="Port [CHRONOX_SERVE_PORT].")
def serve(bind: str | None, port: int | None) -> None:
    """Serve the HTTP read API (/v1/...) and the live page (/) until stopped."""
    import logging.config

    from chronox_stream.read.server import serve as run
    from chronox_stream.runtime.logs import logging_config

    settings = _settings(serve_bind=bind, serve_port=port)
    logging.config.dictConfig(logging_config(settings))
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        pass


@main.group()
def db() -> None:
    """PostgreSQL schema management."""


@db.command()
def migrate() -> None:
    """Create the schema, the bars and splits tables and the adjusted read path (idempotent)."""
    from chronox_stream.client.reach import reaching_postgres
    from chronox_stream.sinks.postgres import PostgresSink

    async def run(settings: Settings) -> None:
        with reaching_postgres(settings):
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


@main.group()
def dlq() -> None:
    """Dead-lettered records: list them with their reasons, show one, send some back."""


def _dlq_records(overrides: dict[str, Any], since: str | None) -> tuple[Settings, list[Any]]:
    from datetime import UTC, datetime

    from chronox_stream.client.dlq import parse_since, read_dead_letters

    settings = _settings(**overrides)
    try:
        moment = parse_since(since, datetime.now(UTC)) if since else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    return settings, asyncio.run(read_dead_letters(settings, moment))


_reason = click.option("--reason", help="Only records dead-lettered with this reason code.")
_topic = click.option("--topic", help="Only records that came from this topic (full name).")
_since = click.option(
    "--since", help="Only records dead-lettered since: ISO-8601 time (UTC) or an age (30m, 2h, 7d)."
)


@dlq.command("list")
@_reason
@_topic
@_since
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Print at most the newest this many.")  # fmt: skip
@kafka_options
@json_option
def dlq_list(
    reason: str | None,
    topic: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    **overrides: Any,
) -> None:
    """One line per dead letter, oldest first: PARTITION:OFFSET, time, source, reason."""
    from chronox_stream.client import dlq as letters

    _, records = _dlq_records(overrides, since)
    chosen = letters.select(records, reason=reason, topic=topic)[-limit:]
    if as_json:
        _echo_json({"records": [letters.as_json(r) for r in chosen]})
        return
    for record in chosen:
        click.echo(letters.line(record))
    click.echo(f"{len(chosen)} record(s)", err=True)


@dlq.command("show")
@click.argument("record_id", metavar="PARTITION:OFFSET")
@kafka_options
@json_option
def dlq_show(record_id: str, as_json: bool, **overrides: Any) -> None:
    """The whole dead letter: reason, origin, headers, key and value (text or base64)."""
    from chronox_stream.client import dlq as letters

    try:
        wanted = letters.parse_id(record_id)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="PARTITION:OFFSET") from None
    _, records = _dlq_records(overrides, None)
    found = letters.select(records, ids=[wanted])
    if not found:
        raise click.ClickException(f"no dead letter at {record_id}")
    if as_json:
        _echo_json(letters.as_json(found[0], full=True))
    else:
        click.echo(letters.show_text(found[0]))


@dlq.command("replay")
@click.argument("record_ids", nargs=-1, metavar="[PARTITION:OFFSET]...")
@_reason
@_topic
@_since
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing.")
@click.option("--again", is_flag=True, help="Also send records replayed before.")
@kafka_options
@json_option
def dlq_replay(
    record_ids: tuple[str, ...],
    reason: str | None,
    topic: str | None,
    since: str | None,
    dry_run: bool,
    again: bool,
    as_json: bool,
    **overrides: Any,
) -> None:
    """Send the selected dead letters' key and value back to their topic (after a fix).

    Select by ids, or by --reason/--topic/--since (at least one). Each record goes to the
    partition it came from; a marker on the dead-letter topic records the replay, and a
    record replayed before is skipped unless --again.
    """
    from datetime import UTC, datetime

    from chronox_stream.client import dlq as letters

    if not (record_ids or reason or topic or since):
        raise click.UsageError("select records: PARTITION:OFFSET ids, --reason, --topic or --since")
    try:
        ids = [letters.parse_id(text) for text in record_ids]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="PARTITION:OFFSET") from None
    settings, records = _dlq_records(overrides, since)
    chosen = letters.select(records, ids=ids, reason=reason, topic=topic)
    missing = sorted(set(record_ids) - {r.id for r in chosen}) if ids else []
    plan = letters.plan(chosen, again=again)
    skipped = [(r.id, why) for r, why in plan.skip] + [(i, "no such dead letter") for i in missing]
    sent: list[str] = []
    if not dry_run and plan.send:
        done = asyncio.run(letters.replay(settings, plan.send, datetime.now(UTC)))
        sent, skipped = done.sent, skipped + done.lost
    targets = {r.id: f"{r.source_topic}[{r.source_partition}]" for r in plan.send}
    if as_json:
        _echo_json({"dry_run": dry_run,
                    "sent": [] if dry_run else [{"id": i, "to": targets[i]} for i in sent],
                    "would_send": [{"id": r.id, "to": targets[r.id]} for r in plan.send]
                    if dry_run else [],
                    "skipped": [{"id": i, "why": why} for i, why in skipped]})  # fmt: skip
        return
    for record in plan.send:
        if dry_run or record.id in sent:
            verb = "would send" if dry_run else "sent"
            click.echo(f"{verb} {record.id} -> {targets[record.id]} ({record.reason})")
    for record_id, why in skipped:
        click.echo(f"skipped {record_id}: {why}")
    count = len(plan.send) if dry_run else len(sent)
    click.echo(f"{count} record(s) {'would be sent (dry run)' if dry_run else 'sent'}, "
               f"{len(skipped)} skipped")  # fmt: skip


@main.command("config")
@kafka_options
@json_option
def config(as_json: bool, **overrides: Any) -> None:
    """The effective settings (environment and flags), every secret masked."""
    from chronox_stream.client import config as effective

    settings = _settings(**overrides)
    explicit = set(Settings().model_fields_set) | {k for k, v in overrides.items() if v is not None}
    if as_json:
        _echo_json(effective.as_json(settings, explicit))
    else:
        click.echo(effective.render(settings, explicit))


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
