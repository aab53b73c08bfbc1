"""Why an input was refused: a machine-readable reason code and a human message.

Every refused control message is forwarded to the dead-letter topic unchanged,
with these two values in its headers, so nothing is silently dropped.
"""

from __future__ import annotations

from typing import Literal

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
    "invalid_envelope",
    "invalid_work_item",
]


class Rejected(ValueError):
    """An input that cannot be processed; carries ``reason`` (code) and ``message`` (human)."""

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: ReasonCode = reason
        self.message = message
