"""A failing ``chronox`` command prints what went wrong, never a secret from its settings."""

import os
import subprocess
import sys
from typing import NoReturn

import click
import pytest
from click.testing import CliRunner

from chronox_stream.cli import main
from chronox_stream.client import status as status_report
from tests.fixtures.sim import free_port

PASSWORD = "pg-pass-3b9f0d7a1c5e"
REDIS_PASSWORD = "redis-pass-6a2c8e4f0b"
KEY = "pk-live-9e7c5a3b1d"
SECRET_ENV = {
    "CHRONOX_POSTGRES_DSN": f"postgresql://chronox:{PASSWORD}@127.0.0.1:{free_port()}/chronox",
    "CHRONOX_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0",
    "CHRONOX_POLYGON_API_KEY": KEY,
}


def assert_no_secret(output: str) -> None:
    for secret in (PASSWORD, REDIS_PASSWORD, KEY):
        assert secret not in output


@pytest.mark.timeout(60)
def test_status_against_unreachable_services_prints_no_secret() -> None:
    env = {**os.environ, **SECRET_ENV, "CHRONOX_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    done = subprocess.run(
        [sys.executable, "-m", "chronox_stream", "status"],
        env=env, capture_output=True, text=True, timeout=50, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "KafkaConnectionError" in done.stderr
    assert_no_secret(done.stdout + done.stderr)


def test_an_uncaught_exception_carrying_the_dsn_prints_its_traceback_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fails(settings: object, now: object) -> NoReturn:
        raise ConnectionError(f"cannot reach {SECRET_ENV['CHRONOX_POSTGRES_DSN']} with {KEY}")

    monkeypatch.setattr(status_report, "gather", fails)
    result = CliRunner().invoke(main, ["status"], env=SECRET_ENV)
    assert result.exit_code == 1
    assert "Traceback" in result.output
    assert "ConnectionError: cannot reach postgresql://chronox:***@127.0.0.1" in result.output
    assert_no_secret(result.output)


def test_an_error_message_carrying_a_secret_is_printed_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fails(settings: object, now: object) -> NoReturn:
        raise click.ClickException(f"upstream refused key {KEY}")

    monkeypatch.setattr(status_report, "gather", fails)
    result = CliRunner().invoke(main, ["status"], env=SECRET_ENV)
    assert result.exit_code == 1
    assert "Error: upstream refused key ***" in result.output
    assert_no_secret(result.output)


def test_a_command_that_exits_with_its_own_code_prints_no_traceback() -> None:
    from chronox_stream.cli import RedactingGroup

    @click.group(cls=RedactingGroup)
    def group() -> None:
        """A group like ``chronox``."""

    @group.command()
    @click.pass_context
    def check(ctx: click.Context) -> None:
        click.echo("not ready")
        ctx.exit(3)

    result = CliRunner().invoke(group, ["check"])
    assert result.exit_code == 3
    assert result.output == "not ready\n", "a status code, not a failure"
