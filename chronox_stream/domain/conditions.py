"""Which trades a consolidated bar may use, by SIP sale condition (Polygon's update rules).

The three sets are FORMATS.md's table "Trade conditions in bars" (Polygon's
``/v3/reference/conditions`` ``update_rules.consolidated``). A trade with no
conditions, or only conditions outside these sets (0 regular, 14 intermarket
sweep, ...), counts everywhere.

Shared by the pipeline's tick aggregation and the simulator: both follow the
same published table, while their folding code is written apart so that the
cross-check between them means something.
"""

from __future__ import annotations

from collections.abc import Iterable

#: May not set the high or the low.
NO_HIGH_LOW = frozenset({2, 7, 12, 13, 15, 16, 20, 21, 37, 52, 53})
#: May not set the open or the close (last price).
NO_OPEN_CLOSE = NO_HIGH_LOW | frozenset({5, 10, 22, 29, 33})
#: Do not count in volume (nor in the transaction count ``n``).
NO_VOLUME = frozenset({15, 16, 38})
#: The odd-lot condition, carried by every trade of fewer than 100 shares.
ODD_LOT = 37


def sets_high_low(conditions: Iterable[int]) -> bool:
    return NO_HIGH_LOW.isdisjoint(conditions)


def sets_open_close(conditions: Iterable[int]) -> bool:
    return NO_OPEN_CLOSE.isdisjoint(conditions)


def counts_in_volume(conditions: Iterable[int]) -> bool:
    return NO_VOLUME.isdisjoint(conditions)
