"""Which failures are retried and which dead-letter their record; dead-letter copies that fit."""

from __future__ import annotations

import asyncpg
import pytest
import redis.exceptions
from aiohttp import ClientConnectionError
from aiokafka import errors as kafka_errors

from chronox_stream.contracts.dead_letters import (
    KEY_OMITTED_HEADER,
    MAX_KEY,
    MAX_MESSAGE,
    MAX_VALUE,
    VALUE_OMITTED_HEADER,
    VALUE_TRUNCATED_HEADER,
    fitted,
)
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.runtime.failures import is_world_failure, rejection_for


def postgres_error(sqlstate: str) -> asyncpg.PostgresError:
    error_class = asyncpg.PostgresError.get_message_class_for_sqlstate(sqlstate)
    return error_class("refused")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(),
        TimeoutError(),
        ClientConnectionError(),
        redis.exceptions.ConnectionError(),
        redis.exceptions.TimeoutError(),
        kafka_errors.KafkaConnectionError(),
        kafka_errors.KafkaTimeoutError(),
        postgres_error("57P01"),  # admin shutdown
        postgres_error("53300"),  # too many connections
        postgres_error("42P01"),  # the table was dropped under us: the server's state
        asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
    ],
    ids=type,
)
def test_failures_of_the_world_are_retried(error: BaseException) -> None:
    assert is_world_failure(error)


@pytest.mark.parametrize(
    "error",
    [
        Rejected("invalid_json", "no"),
        ValueError("cannot convert float infinity to integer"),
        OverflowError("date value out of range"),
        TypeError("'NoneType' object is not subscriptable"),
        KeyError("tf"),
        postgres_error("22P05"),  # a NUL byte in text
        postgres_error("22003"),  # numeric value out of range
        postgres_error("54000"),  # index row too large
        kafka_errors.MessageSizeTooLargeError(),
        kafka_errors.RecordTooLargeError(),
    ],
    ids=type,
)
def test_failures_that_lie_in_the_record_are_not(error: BaseException) -> None:
    assert not is_world_failure(error)


def test_a_rejection_keeps_its_reason_and_anything_else_is_unprocessable() -> None:
    rejected = Rejected("invalid_symbol", "bad")
    assert rejection_for(rejected) is rejected
    other = rejection_for(OverflowError("x" * 10_000))
    assert other.reason == "unprocessable" and other.message.startswith("OverflowError: x")
    assert len(other.message) <= 500


def test_a_dead_letter_copy_echoes_what_fits_and_points_at_what_does_not() -> None:
    origin = {"chronox-source-topic": b"t", "chronox-source-offset": b"7"}
    small = fitted(b"AAPL", b"{}", Rejected("invalid_json", "m" * 5000), origin)
    assert (small.key, small.value) == (b"AAPL", b"{}")
    assert len(small.headers["chronox-message"].decode()) == MAX_MESSAGE
    assert small.headers["chronox-reason"] == b"invalid_json"

    large = fitted(b"k" * (MAX_KEY + 1), b"v" * (MAX_VALUE + 1), Rejected("invalid_json", "m"),
                   origin)  # fmt: skip
    assert (large.key, large.value) == (None, None)
    assert large.headers[KEY_OMITTED_HEADER] == str(MAX_KEY + 1).encode()
    assert large.headers[VALUE_OMITTED_HEADER] == str(MAX_VALUE + 1).encode()
    assert large.headers["chronox-source-offset"] == b"7", "the pointer to the original"


def test_input_from_outside_kafka_is_cut_rather_than_dropped() -> None:
    letter = fitted(None, b"v" * (MAX_VALUE + 5), Rejected("invalid_value", "m"), {})
    assert letter.value == b"v" * MAX_VALUE
    assert letter.headers[VALUE_TRUNCATED_HEADER] == str(MAX_VALUE + 5).encode()
