"""Log lines: JSON when asked, structured fields kept, secrets never printed."""

import io
import logging

import orjson
import pytest
from pydantic import SecretStr

from chronox_stream.runtime.logs import JsonFormatter, RedactSecrets, TextFormatter, secret_values
from chronox_stream.settings import Settings


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("chronox.test", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_carry_structured_fields() -> None:
    line = JsonFormatter().format(record("phase done", symbol="AAPL", count=3, elapsed_s=0.5))
    doc = orjson.loads(line)
    assert doc["message"] == "phase done"
    assert (doc["symbol"], doc["count"], doc["elapsed_s"]) == ("AAPL", 3, 0.5)
    assert doc["level"] == "INFO"


def test_text_lines_append_fields_as_key_value() -> None:
    line = TextFormatter().format(record("phase done", symbol="AAPL"))
    assert line.endswith("phase done symbol=AAPL")


def test_every_secret_is_redacted_from_messages_and_arguments() -> None:
    settings = Settings(
        polygon_api_key=SecretStr("pk-live-123456"),
        s3_secret_key=SecretStr("s3-secret-abcdef"),
        postgres_dsn=SecretStr("postgresql://u:pg-pass-999@db:5432/x"),
        redis_url=SecretStr("redis://:redis-pass-777@cache:6379/0"),
    )
    redact = RedactSecrets(secret_values(settings))
    rec = record(
        "GET %s failed; dsn=%s",
        "https://api/x?apiKey=pk-live-123456",
        "postgresql://u:pg-pass-999@db:5432/x",
    )
    rec.msg += " s3=s3-secret-abcdef redis=redis-pass-777"
    assert redact.filter(rec)
    out = rec.getMessage()
    for secret in ("pk-live-123456", "s3-secret-abcdef", "pg-pass-999", "redis-pass-777"):
        assert secret not in out
    assert out.count("***") == 4


def test_settings_repr_hides_secrets() -> None:
    settings = Settings(polygon_api_key=SecretStr("pk-live-123456"))
    assert "pk-live-123456" not in repr(settings)
    assert "pk-live-123456" not in str(settings.model_dump())


def test_overrides_are_validated_like_the_environment() -> None:
    settings = Settings().with_overrides(polygon_api_key="pk-9", web_port="7000", log_level=None)
    assert isinstance(settings.polygon_api_key, SecretStr)
    assert settings.web_port == 7000
    assert settings.log_level == Settings().log_level


KEY = "pk-live-5f1c9a7e3b"
PASSWORD = "pg-pass-8d2e6b0c4a"
DSN = f"postgresql://chronox:{PASSWORD}@db:5432/chronox"


def log_lines(formatter: logging.Formatter) -> str:
    """What a handler set up like the worker's prints for records full of secrets."""
    settings = Settings(polygon_api_key=SecretStr(KEY), postgres_dsn=SecretStr(DSN))
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactSecrets(secret_values(settings)))
    handler.setFormatter(formatter)
    log = logging.getLogger(f"chronox.test.redact.{type(formatter).__name__}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        log.warning(f"inline key {KEY}")
        log.warning("dsn %s and key %s", DSN, KEY)
        try:
            try:
                raise KeyError(KEY)
            except KeyError as cause:
                raise ConnectionError(f"cannot reach {DSN}") from cause
        except ConnectionError:
            log.exception("write failed", extra={"symbol": KEY, "reason": {"dsn": DSN}})
        log.info("here", stack_info=True, extra={"phase": "pk-live-5f1c9a7e3b"})
    finally:
        log.removeHandler(handler)
    return out.getvalue()


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_no_secret_in_messages_arguments_tracebacks_stacks_or_fields(
    formatter: logging.Formatter,
) -> None:
    output = log_lines(formatter)
    assert KEY not in output and PASSWORD not in output
    assert "ConnectionError: cannot reach postgresql://chronox:***@db" in output
    assert "KeyError: '***'" in output, "the cause's traceback is printed, redacted"
    assert "Stack (most recent call last)" in output


def test_json_lines_carry_the_redacted_traceback_and_fields() -> None:
    docs = [orjson.loads(line) for line in log_lines(JsonFormatter()).splitlines()]
    assert [d["message"] for d in docs] == [
        "inline key ***", "dsn postgresql://chronox:***@db:5432/chronox and key ***",
        "write failed", "here",
    ]  # fmt: skip
    failed = docs[2]
    assert failed["exc"].startswith("Traceback") and failed["symbol"] == "***"
    assert failed["reason"] == "{'dsn': 'postgresql://chronox:***@db:5432/chronox'}"
    assert docs[3]["phase"] == "***" and "stack" in docs[3]


def test_passwords_given_as_dsn_parameters_are_secrets_too() -> None:
    settings = Settings(
        postgres_dsn=SecretStr("postgresql://u@db/x?password=pg-query-pass-1"),
        redis_url=SecretStr("redis://cache:6379/0?password=redis-query-pass-2"),
    )
    assert {"pg-query-pass-1", "redis-query-pass-2"} <= set(secret_values(settings))
