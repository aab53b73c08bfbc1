"""The one rule every consumer follows: a failure lies either in the record or in the world.

A failure that lies in the record (it does not parse, a value is out of range, the database
refuses one of its values) fails again on every retry: retrying it would stall its partition
for good. Such a record is dead-lettered with a reason and the loop moves on; the dead-letter
copy keeps its original bytes (or a pointer to them), so nothing is lost.

A failure of the world (Kafka, PostgreSQL, Redis or an HTTP peer unreachable or timing out, a
server shutting down) passes once the world recovers: the work is retried with backoff and the
consumer's offsets stay where they are meanwhile, so it is delayed, never dropped.

Anything not known to be the world's counts as the record's, except for the database: a
PostgreSQL error outside the classes caused by the values written (SQLSTATE 22 data
exception, 23 integrity violation, 54 program limit exceeded such as an index row too
large) is the server's state (a dropped table, a full disk, a shutdown), not the bar's.
"""

from __future__ import annotations

import asyncpg
import redis.exceptions
from aiohttp import ClientError
from aiokafka import errors as kafka_errors

from chronox_stream.contracts.rejects import Rejected

#: Kafka errors caused by the record itself: it is too large or broken, whoever retries it.
_RECORD_KAFKA_ERRORS = (
    kafka_errors.RecordTooLargeError,
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.InvalidMessageError,
    kafka_errors.CorruptRecordException,
)
#: SQLSTATE classes caused by the values written: data exception, integrity violation,
#: program limit exceeded.
_RECORD_SQLSTATE_CLASSES = ("22", "23", "54")
#: Longest error text a rejection keeps: the dead-letter headers must fit any topic.
MAX_ERROR_TEXT = 500


def is_world_failure(error: BaseException) -> bool:
    """True when ``error`` comes from a dependency's state and will pass by itself."""
    if isinstance(error, Rejected):
        return False
    if isinstance(error, OSError | ClientError | redis.exceptions.RedisError):
        return True
    if isinstance(error, asyncpg.PostgresError):
        return not str(error.sqlstate or "").startswith(_RECORD_SQLSTATE_CLASSES)
    if isinstance(error, asyncpg.InterfaceError):
        # Its ValueError kind is asyncpg failing to encode a value (an int beyond int64).
        return not isinstance(error, ValueError)
    if isinstance(error, kafka_errors.KafkaError):
        return not isinstance(error, _RECORD_KAFKA_ERRORS)
    return False


def rejection_for(error: Exception) -> Rejected:
    """``error`` as the reason a record is dead-lettered: a rejection keeps its own reason;
    anything else is ``unprocessable``, named by its type and (shortened) message."""
    if isinstance(error, Rejected):
        return error
    text = f"{type(error).__name__}: {error}"
    if len(text) > MAX_ERROR_TEXT:
        text = text[: MAX_ERROR_TEXT - 1] + "…"
    return Rejected("unprocessable", text)
