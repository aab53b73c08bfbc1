"""Log lines: JSON when asked, structured fields kept, secrets never printed."""

import logging

import orjson
from pydantic import SecretStr

from chronox_stream.logs import JsonFormatter, RedactSecrets, TextFormatter, secret_values
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
