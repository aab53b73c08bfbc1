"""`chronox config` shows the effective settings without a secret; every Kafka command takes
the connection flags; `--json` documents of status and ingest --wait."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import orjson
import pytest
from click.testing import CliRunner

from chronox_stream.cli import ingest_parser, main
from chronox_stream.client.follow import Outcome, outcome_json
from chronox_stream.client.options import KAFKA_SETTINGS, setting_option
from chronox_stream.client.reach import masked_url
from chronox_stream.client.status import Report, SymbolStatus, report_json
from chronox_stream.domain.gaps import Interval
from chronox_stream.domain.registry import RegistryEntry

SECRETS = {
    "CHRONOX_POSTGRES_DSN": "postgresql://chronox:pg-secret-41d9@db.internal:5432/bars",
    "CHRONOX_REDIS_URL": "redis://default:redis-secret-7e2a@cache.internal:6379/0?password=q-secret-55",
    "POLYGON_API_KEY": "pk-secret-0c8f1e",
    "CHRONOX_S3_SECRET_KEY": "s3-secret-9b7d",
}  # fmt: skip


def test_config_masks_every_secret_and_marks_what_is_set() -> None:
    env = {**SECRETS, "CHRONOX_TOPIC_PREFIX": "prod"}
    result = CliRunner().invoke(main, ["config", "--kafka-bootstrap", "k1:9092,k2:9092"], env=env)
    assert result.exit_code == 0, result.output
    for secret in ("pg-secret-41d9", "redis-secret-7e2a", "q-secret-55", "pk-secret-0c8f1e",
                   "s3-secret-9b7d"):  # fmt: skip
        assert secret not in result.output
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert lines["CHRONOX_KAFKA_BOOTSTRAP"] == ["k1:9092,k2:9092", "(set)"]
    assert lines["CHRONOX_TOPIC_PREFIX"] == ["prod", "(set)"]
    assert lines["CHRONOX_POLYGON_API_KEY"] == ["***", "(set)"]
    assert lines["CHRONOX_POSTGRES_DSN"] == ["postgresql://chronox:***@db.internal:5432/bars",
                                             "(set)"]  # fmt: skip
    assert lines["CHRONOX_APP_ID"] == ["chronox-stream"], "a default is not marked"

    doc = orjson.loads(CliRunner().invoke(main, ["config", "--json"], env=env).stdout)
    assert doc["settings"]["redis_url"] == (
        "redis://default:***@cache.internal:6379/0?password=***")
    assert doc["settings"]["polygon_api_key"] == "***" and doc["settings"]["topic_partitions"] == 8
    assert {"polygon_api_key", "topic_prefix"} <= set(doc["set"]) and "app_id" not in doc["set"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [("postgresql://u:p%40ss@h:5432/d", "postgresql://u:***@h:5432/d"),
     ("postgresql://u@h/d?sslmode=require&password=pw", "postgresql://u@h/d?sslmode=require&password=***"),
     ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
     ("rediss://h:6380", "rediss://h:6380")],
)  # fmt: skip
def test_urls_keep_their_address_and_lose_their_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def kafka_commands() -> list[tuple[str, click.Command]]:
    """Every command that talks to Kafka (`ingest` parses its flags itself)."""
    registry = main.get_command(click.Context(main), "registry")
    dlq = main.get_command(click.Context(main), "dlq")
    assert isinstance(registry, click.Group) and isinstance(dlq, click.Group)
    named = [(f"registry {n}", c) for n, c in registry.commands.items()]
    named += [(f"dlq {n}", c) for n, c in dlq.commands.items()]
    for name in ("worker", "status", "config"):
        command = main.get_command(click.Context(main), name)
        assert command is not None
        named.append((name, command))
    return named


def test_every_kafka_command_takes_every_connection_flag() -> None:
    flags = {f"--{name.replace('_', '-')}" for name in KAFKA_SETTINGS}
    for name, command in kafka_commands():
        options = {opt for param in command.params for opt in param.opts}
        assert flags <= options, name
    ingest_flags = {opt for action in ingest_parser()._actions for opt in action.option_strings}
    assert flags <= ingest_flags


def test_a_secrets_flag_says_to_prefer_the_environment() -> None:
    def helped(name: str) -> str:
        command = setting_option(name)(click.command()(lambda **_: None))
        (option,) = command.params
        assert isinstance(option, click.Option) and option.help is not None
        return option.help

    assert "prefer the variable" in helped("postgres_dsn")
    assert helped("kafka_bootstrap") == "Kafka bootstrap servers. [CHRONOX_KAFKA_BOOTSTRAP]"


def test_ingest_wait_json_reports_the_outcome() -> None:
    outcome = Outcome()
    events = [{"state": "accepted", "count": 1},
              {"state": "done", "symbol": "AAPL", "phase": "api", "count": 390},
              {"state": "failed", "symbol": "AAPL", "phase": "snapshot", "error": "HTTP 500"},
              {"state": "finished", "symbol": "AAPL"}]  # fmt: skip
    for event in events:
        outcome.apply(event)
    assert outcome_json("r1", outcome, dry_run=False) == {
        "request_id": "r1", "dry_run": False, "complete": True, "work_items": 1, "bars": 390,
        "finished": ["AAPL"],
        "phases": [{"symbol": "AAPL", "phase": "api", "state": "done"},
                   {"symbol": "AAPL", "phase": "snapshot", "state": "failed"}],
        "failures": ["AAPL snapshot: HTTP 500"],
    }  # fmt: skip


def test_status_json_has_every_symbol_the_stream_and_each_groups_lag() -> None:
    at = datetime(2024, 1, 17, 15, 30, tzinfo=UTC)
    gap = Interval(datetime(2024, 1, 16, 9, tzinfo=UTC), datetime(2024, 1, 16, 12, tzinfo=UTC))
    entry = RegistryEntry(symbol="MSFT", strategy="api", enabled=False, last_backfill=at)
    lag = {"agents": 3, "ticks": -1, "postgres sink": 0}
    doc = report_json(Report([SymbolStatus(entry, [gap], False)], None, lag))
    assert doc == {
        "symbols": [{"symbol": "MSFT", "strategy": "api", "enabled": False, "status": "idle",
                     "last_backfill": "2024-01-17T15:30:00Z", "last_snapshot": None,
                     "last_stream": None, "last_error": None,
                     "open_gaps": [{"start": "2024-01-16T09:00:00Z",
                                    "end": "2024-01-16T12:00:00Z"}],
                     "streaming": False}],
        "stream": {"connected": False, "reason": None, "since": None, "symbols": []},
        "lag": {"agents": 3, "ticks": None, "postgres_sink": 0},
    }  # fmt: skip
