"""Logging: human-readable lines by default, one JSON object per line with ``log_format=json``.

Structured fields (request_id, symbol, phase, source, counts, elapsed, ...) are
passed with ``extra=``; the JSON formatter emits them, the text formatter
appends them as ``key=value``. A redaction filter replaces every configured
secret wherever it would appear, as a last line of defence.
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from chronox_stream.settings import Settings

FIELDS = ("request_id", "symbol", "phase", "source", "tf", "count", "elapsed_s", "reason")
REDACTED = "***"
MIN_SECRET_LENGTH = 8


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if hasattr(record, k))
        return f"{line} {extras}" if extras else line


class RedactSecrets(logging.Filter):
    """Replaces each secret value in a record's rendered message and arguments."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        # Short values (a local default such as "chronox") would also blank ordinary words.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            for secret in self._secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, including passwords inside DSNs and URLs."""
    values = [
        settings.polygon_api_key.get_secret_value(),
        settings.s3_access_key.get_secret_value(),
        settings.s3_secret_key.get_secret_value(),
    ]
    for url in (settings.postgres_dsn, settings.redis_url):
        password = urlsplit(url.get_secret_value()).password
        if password:
            values.append(password)
    return values


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``dictConfig`` for our processes (Faust's worker takes it as ``logging_config``)."""
    formatter = "json" if settings.log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactSecrets, "secrets": secret_values(settings)}},
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["redact"],
            }
        },
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
        # aiokafka logs every partition assignment at INFO: thousands of characters a rebalance.
        "loggers": {"aiokafka": {"level": "WARNING"}},
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
