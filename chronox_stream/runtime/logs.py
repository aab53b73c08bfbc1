"""Logging: human-readable lines by default, one JSON object per line with ``log_format=json``.

Structured fields (request_id, symbol, phase, source, counts, elapsed, ...) are
passed with ``extra=``; the JSON formatter emits them, the text formatter
appends them as ``key=value``. A redaction filter replaces every configured
secret wherever a formatter would print it (message, arguments, exception and
traceback, stack, structured fields), as a last line of defence; ``redact`` does
the same for text printed without logging (the CLI's errors).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from chronox_stream.settings import Settings

FIELDS = ("request_id", "symbol", "phase", "source", "tf", "count", "elapsed_s", "reason")
REDACTED = "***"
MIN_SECRET_LENGTH = 8
_FORMATTER = logging.Formatter()  # renders a traceback exactly as the standard formatters do


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if hasattr(record, k))
        return f"{line} {extras}" if extras else line


def usable_secrets(secrets: Iterable[str]) -> list[str]:
    """The values worth redacting, longest first (so a secret inside another goes with it).

    Short values (a local default such as "chronox") would also blank ordinary words.
    """
    return sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret of ``secrets`` replaced by ``***``."""
    return _replace(text, usable_secrets(secrets))


def _replace(text: str, ordered: list[str]) -> str:
    for secret in ordered:
        text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Replaces each secret wherever a formatter could print it from a record.

    That is the message with its arguments, the exception with its traceback
    (rendered here, then dropped from the record so that no formatter renders it
    again unredacted), the stack, and every other attribute: the structured
    fields passed with ``extra=`` and whatever a handler might add.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = usable_secrets(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: still print, redacted
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = _replace(message, self._secrets), None
        if record.exc_info:
            record.exc_text = record.exc_text or _FORMATTER.formatException(record.exc_info)
            record.exc_info = None
        for key, value in list(vars(record).items()):
            if key == "args" or value is None or isinstance(value, bool | int | float):
                continue
            try:
                text = str(value)
            except Exception:  # a filter must not raise into the code that logs
                continue
            redacted = _replace(text, self._secrets)
            if redacted != text:
                setattr(record, key, redacted)
        return True


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, including passwords inside DSNs and URLs."""
    values = [
        settings.polygon_api_key.get_secret_value(),
        settings.s3_access_key.get_secret_value(),
        settings.s3_secret_key.get_secret_value(),
        *(secret.get_secret_value() for secret in (settings.kafka_sasl_password,
                                                   settings.kafka_ssl_key_password) if secret),
    ]
    for url in (settings.postgres_dsn, settings.redis_url):
        parts = urlsplit(url.get_secret_value())
        values += [parts.password or "", *parse_qs(parts.query).get("password", [])]
    return [value for value in values if value]


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
