"""A service a command could not reach: one line and an exit code of its own, no traceback.

A script calling ``chronox`` tells "Kafka is down" from "PostgreSQL is down" from "my
request was wrong" by the exit code alone:

=====  ===================================================
code   meaning
=====  ===================================================
0      done
1      the command failed (a phase failed, a timeout, any other error)
2      usage: a wrong flag or value (click's own code), an invalid setting
3      Kafka unreachable (or refused the connection: authentication, TLS)
4      PostgreSQL unreachable (or refused the connection)
5      Redis unreachable (or refused the connection)
=====  ===================================================

Kafka's and Redis's clients raise errors of their own packages, so those are recognised
wherever they surface. PostgreSQL's driver raises plain ``OSError`` for a refused
connection, which could be anything's: code that connects to PostgreSQL wraps the
connection in :func:`reaching_postgres`. The address is printed with any password masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from chronox_stream.settings import Settings

KAFKA, POSTGRES, REDIS = "Kafka", "PostgreSQL", "Redis"
EXIT_CODES = {KAFKA: 3, POSTGRES: 4, REDIS: 5}
MASK = "***"
_CAUSE_CHARS = 200


class Unreachable(Exception):
    """``service`` at ``address`` (masked) could not be reached; ``cause`` says why."""

    def __init__(self, service: str, address: str, cause: BaseException) -> None:
        self.service, self.address = service, address
        self.cause = cause
        super().__init__(self.line())

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.service]

    def line(self) -> str:
        """One line: the service, its address and the cause (type and first line)."""
        name = type(self.cause).__name__
        text = " ".join(str(self.cause).split()).removeprefix(f"{name}: ")
        if len(text) > _CAUSE_CHARS:
            text = text[: _CAUSE_CHARS - 1] + "…"
        why = f"{name}: {text}" if text else name
        return f"cannot reach {self.service} at {self.address} ({why})"


def masked_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) as ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:{MASK}@{host}"
    query = parts.query
    if "password=" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


@dataclass(frozen=True, slots=True)
class Addresses:
    """Where each service is, as printed (no secret)."""

    kafka: str
    postgres: str
    redis: str

    @classmethod
    def of(cls, settings: Settings) -> Addresses:
        return cls(
            kafka=settings.kafka_bootstrap,
            postgres=masked_url(settings.postgres_dsn.get_secret_value()),
            redis=masked_url(settings.redis_url.get_secret_value()),
        )


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, the exceptions of a group, and the causes behind them."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def classify(error: BaseException, settings: Settings) -> Unreachable | None:
    """The unreachable service behind ``error`` (Kafka's or Redis's client errors), if any."""
    from aiokafka import errors as kafka_errors
    from redis import exceptions as redis_errors

    kafka_types = (kafka_errors.KafkaConnectionError, kafka_errors.NoBrokersAvailable,
                   kafka_errors.NodeNotReadyError, kafka_errors.KafkaTimeoutError,
                   kafka_errors.SaslAuthenticationFailed,
                   kafka_errors.UnsupportedSaslMechanismError)  # fmt: skip
    redis_types = (redis_errors.ConnectionError, redis_errors.TimeoutError)
    addresses = Addresses.of(settings)
    for cause in _chain(error):
        if isinstance(cause, Unreachable):
            return cause
        if isinstance(cause, kafka_types):
            return Unreachable(KAFKA, addresses.kafka, cause)
        if isinstance(cause, redis_types):
            return Unreachable(REDIS, addresses.redis, cause)
    return None


@contextmanager
def reaching_postgres(settings: Settings) -> Iterator[None]:
    """Turn a failure to connect to PostgreSQL inside the block into :class:`Unreachable`."""
    import asyncpg

    connecting = (OSError, TimeoutError, asyncpg.PostgresConnectionError,
                  asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError,
                  asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)  # fmt: skip
    try:
        yield
    except connecting as error:
        raise Unreachable(POSTGRES, Addresses.of(settings).postgres, error) from None
