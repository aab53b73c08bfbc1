"""The dead-letter copy of a refused record (pure): original bytes, reason, and where it was.

A copy must always fit the dead-letter topic, or dead-lettering itself would fail and the
record would be lost or block its partition. What is echoed is bounded: the human message is
cut to ``MAX_MESSAGE`` characters, and a key or value too large to forward is left out,
replaced by a header giving its size: the ``chronox-source-*`` headers (topic, partition,
offset) then point at the original, which stays on its topic for its retention. Input that
did not come from Kafka (a WebSocket event) has no such pointer: its value is cut to
``MAX_VALUE`` bytes instead, and a header says how long it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from chronox_stream.contracts.rejects import Rejected

REASON_HEADER = "chronox-reason"
MESSAGE_HEADER = "chronox-message"
VALUE_OMITTED_HEADER = "chronox-value-omitted"
VALUE_TRUNCATED_HEADER = "chronox-value-truncated"
KEY_OMITTED_HEADER = "chronox-key-omitted"
SOURCE_TOPIC_HEADER = "chronox-source-topic"
SOURCE_PARTITION_HEADER = "chronox-source-partition"
SOURCE_OFFSET_HEADER = "chronox-source-offset"
#: A replay marker (``chronox dlq replay``): a record on the dead-letter topic, keyed by the
#: ``PARTITION:OFFSET`` of a dead letter and without a value, saying it was sent back to its
#: topic (the header holds the same id; a second one, when).
REPLAY_OF_HEADER = "chronox-replay-of"
REPLAYED_AT_HEADER = "chronox-replayed-at"

#: Characters of the human reason kept in the copy.
MAX_MESSAGE = 500
#: Largest key forwarded as is (keys decide partitions; a large one is no real symbol).
MAX_KEY = 1024
#: Largest value forwarded as is: below Kafka's default 1 MB message limit with room for the
#: headers, whatever the producer's or the broker's own limit is set to above that.
MAX_VALUE = 900_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What goes to the dead-letter topic for one refused record."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    message: str


def origin_headers(topic: str, partition: int, offset: int) -> dict[str, bytes]:
    """The ``chronox-source-*`` headers of a record consumed at ``topic[partition]@offset``."""
    return {
        SOURCE_TOPIC_HEADER: topic.encode(),
        SOURCE_PARTITION_HEADER: str(partition).encode(),
        SOURCE_OFFSET_HEADER: str(offset).encode(),
    }


def fitted(
    key: bytes | None, value: bytes | None, rejected: Rejected, origin: dict[str, bytes]
) -> DeadLetter:
    """The copy of a record refused for ``rejected``, bounded in size; ``origin`` holds the
    ``chronox-source-*`` headers (empty for input that did not come from Kafka)."""
    message = rejected.message
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    headers = {
        REASON_HEADER: rejected.reason.encode(),
        MESSAGE_HEADER: message.encode(),
        **origin,
    }
    if key is not None and len(key) > MAX_KEY:
        headers[KEY_OMITTED_HEADER] = str(len(key)).encode()
        key = None
    if value is not None and len(value) > MAX_VALUE:
        if origin:
            headers[VALUE_OMITTED_HEADER] = str(len(value)).encode()
            value = None
        else:
            headers[VALUE_TRUNCATED_HEADER] = str(len(value)).encode()
            value = value[:MAX_VALUE]
    return DeadLetter(key, value, headers, message)
