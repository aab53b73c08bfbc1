"""Numeric bounds of untrusted input (pure): what a tick or a bar may carry.

A value outside them is refused where it enters, with a reason code, because
further in it does harm: an infinite price cannot be summed in 1/10,000 $, a
count of 2^63 does not fit the tick state's 64-bit fields nor PostgreSQL's
``bigint``, and either would fail its batch again on every retry.
"""

from __future__ import annotations

import math

#: The largest signed 64-bit integer: the limit of every count and id we store.
INT64_MAX = 2**63 - 1
#: The highest price a trade or a bar may have, in dollars; no listed share comes near it.
MAX_PRICE = 10_000_000.0
#: The highest value (price × size) of one trade, in dollars: a trillion, far above any
#: real trade, so that one trade's sums in 1/10,000 $ fit 64 bits many thousand times over.
MAX_TRADE_VALUE = 1e12
#: SIP sale condition codes are small numbers; a trade carries a few of them.
MAX_CONDITION = 1_000
MAX_CONDITIONS = 32
#: A trade id is an exchange's short string (Polygon's are up to about 20 characters).
MAX_TRADE_ID_LENGTH = 64


def is_price(value: float) -> bool:
    """Finite, > 0 and at most ``MAX_PRICE`` (NaN fails every comparison, so it is refused)."""
    return 0.0 < value <= MAX_PRICE


def is_amount(value: float) -> bool:
    """A finite quantity >= 0 (a bar's volume)."""
    return 0.0 <= value and math.isfinite(value)


def is_count(value: int) -> bool:
    """A whole number from 0 to ``INT64_MAX``."""
    return 0 <= value <= INT64_MAX
