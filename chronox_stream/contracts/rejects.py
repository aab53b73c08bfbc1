"""Why an input was refused: a machine-readable reason code and a human message.

Every refused control message is forwarded to the dead-letter topic unchanged,
with these two values in its headers, so nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

import orjson

ReasonCode = Literal[
    "invalid_json",
    "not_an_object",
    "unknown_field",
    "missing_field",
    "invalid_type",
    "invalid_symbol",
    "invalid_strategy",
    "invalid_timeframe",
    "invalid_range",
    "invalid_value",
    "out_of_range",
    "invalid_envelope",
    "invalid_work_item",
    "key_mismatch",
    "unprocessable",
    "future_timestamp",
]


class Rejected(ValueError):
    """An input that cannot be processed; carries ``reason`` (code) and ``message`` (human)."""

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: ReasonCode = reason
        self.message = message

    @classmethod
    def of(cls, error: ValueError) -> Rejected:
        """``error`` as a rejection: itself if it is one, else an ``invalid_value``."""
        return error if isinstance(error, Rejected) else cls("invalid_value", str(error))


def decode_object(raw: bytes, fields: Collection[str], what: str) -> dict[str, Any]:
    """The JSON object in ``raw``; ``Rejected`` unless it is one holding only ``fields``.

    ``what`` names the message in the human reason, e.g. "control message".
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected("invalid_json", f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Rejected("not_an_object", f"{what} must be a JSON object")
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        named = ", ".join(repr(name[:40]) for name in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise Rejected("unknown_field", f"unknown field(s): {named}{more}")
    return doc
