"""A failing ``chronox`` command prints what went wrong, never a secret from its settings."""

import os
import subprocess
import sys
from typing import NoReturn

import click
import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner

from chronox_stream.cli import main
from chronox_stream.client import status as status_report
from chronox_stream.client.reach import classify
from chronox_stream.settings import Settings
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


def chronox(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m chronox_stream ARGS`` with ``env`` over the secrets' environment."""
    return subprocess.run(
        [sys.executable, "-m", "chronox_stream", *args],
        env={**os.environ, **SECRET_ENV, **env}, capture_output=True, text=True, timeout=50,
        check=False,
    )  # fmt: skip


@pytest.mark.timeout(60)
def test_an_unreachable_kafka_is_one_line_and_exit_code_3_without_secrets() -> None:
    port = free_port()
    done = chronox("status", "--kafka-bootstrap", f"127.0.0.1:{port}")
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"Error: cannot reach Kafka at 127.0.0.1:{port} (KafkaConnectionError")
    assert_no_secret(done.stdout + done.stderr)


@pytest.mark.parametrize(
    "args",
    [["registry", "list"], ["registry", "enable", "AAPL"], ["dlq", "list"],
     ["dlq", "replay", "--reason", "invalid_json"], ["ingest", "--symbols", "AAPL"]],
)  # fmt: skip
def test_every_kafka_command_takes_the_flag_and_fails_the_same_way(args: list[str]) -> None:
    port = free_port()
    result = CliRunner().invoke(main, [*args, "--kafka-bootstrap", f"127.0.0.1:{port}"],
                                env=SECRET_ENV)  # fmt: skip
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: cannot reach Kafka at 127.0.0.1:{port} (")
    assert result.stderr.count("\n") == 1


def test_the_environment_names_kafka_when_no_flag_does() -> None:
    port = free_port()
    env = {**SECRET_ENV, "CHRONOX_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}
    result = CliRunner().invoke(main, ["status"], env=env)
    assert result.exit_code == 3
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in result.stderr


def test_an_unreachable_postgres_is_one_line_and_exit_code_4_with_the_dsn_masked() -> None:
    result = CliRunner().invoke(main, ["db", "migrate"], env=SECRET_ENV)
    assert result.exit_code == 4, result.output
    (line,) = result.stderr.splitlines()
    dsn = SECRET_ENV["CHRONOX_POSTGRES_DSN"].replace(PASSWORD, "***")
    assert line.startswith(f"Error: cannot reach PostgreSQL at {dsn} (ConnectionRefusedError")
    assert_no_secret(result.output)


async def test_an_unreachable_redis_is_recognised_with_its_url_masked() -> None:
    client = aioredis.from_url(SECRET_ENV["CHRONOX_REDIS_URL"])
    with pytest.raises(Exception) as raised:
        await client.get("any")
    await client.aclose()
    found = classify(raised.value, Settings(redis_url=SECRET_ENV["CHRONOX_REDIS_URL"]))
    assert found is not None and found.exit_code == 5
    url = SECRET_ENV["CHRONOX_REDIS_URL"].replace(REDIS_PASSWORD, "***")
    assert found.line().startswith(f"cannot reach Redis at {url} (ConnectionError")
    assert_no_secret(found.line())


def test_an_invalid_setting_is_a_usage_error_naming_it_without_its_value() -> None:
    env = {**SECRET_ENV, "CHRONOX_TOPIC_PARTITIONS": "0", "CHRONOX_PRELOAD_BACKFILL": KEY}
    result = CliRunner().invoke(main, ["status"], env=env)
    assert result.exit_code == 2
    assert "invalid setting: topic_partitions: " in result.stderr
    assert "preload_backfill: " in result.stderr
    assert_no_secret(result.output)


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
