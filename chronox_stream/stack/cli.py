"""``chronox stack up | down | status``: thin click commands over ``chronox_stream.stack``.

Progress goes to stderr, the per-service summary to stdout. No message
carries a DSN or URL: they name services by ``host:port`` only, and the few
that quote a third-party error mask the passwords where they are built.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from chronox_stream.settings import Settings
from chronox_stream.stack import core
from chronox_stream.stack.model import StackError

T = TypeVar("T")

_stack_dir = click.option(
    "--stack-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of jars, data, logs and pid files [CHRONOX_STACK_DIR].",
)


def _settings(stack_dir: Path | None) -> Settings:
    return Settings().with_overrides(stack_dir=stack_dir)


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _run(action: Callable[[], T]) -> T:
    """Run ``action``; turn a ``StackError`` into a CLI error (exit code 1)."""
    try:
        return action()
    except StackError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("stack")
def stack() -> None:
    """The local Kafka, PostgreSQL and Redis (127.0.0.1 only)."""


@stack.command()
@_stack_dir
def up(stack_dir: Path | None) -> None:
    """Start what does not answer yet, reuse what does; a no-op when all runs."""
    settings = _settings(stack_dir)
    result = _run(lambda: core.up(settings, _progress))
    click.echo(result.render())
    if not result.started_any:
        click.echo("already running: nothing to do")


@stack.command()
@_stack_dir
def down(stack_dir: Path | None) -> None:
    """Stop what `up` started (reused servers and all data stay)."""
    settings = _settings(stack_dir)
    stopped = _run(lambda: core.down(settings))
    for service in stopped:
        click.echo(f"stopped {service.name} (pid {service.pid})")
    if not stopped:
        click.echo("nothing of ours was running")


@stack.command()
@_stack_dir
@click.pass_context
def status(ctx: click.Context, stack_dir: Path | None) -> None:
    """Each service: address, pid, ours or reused, answering; exit 1 unless all answer."""
    settings = _settings(stack_dir)
    result = _run(lambda: core.status(settings))
    click.echo(result.render())
    ctx.exit(0 if result.ok else 1)
