"""The tick aggregator's state as changelog records (pure): codecs and a change-tracking map.

A :class:`~chronox_stream.domain.tick_bars.BarBuilder` keeps five kinds of values under
string keys: minute partials (``m|SYMBOL|…``), emitted marks (``e|SYMBOL|…``), the
trades of a minute (``t|SYMBOL|…``), the symbol's watermark (``w|SYMBOL``, see
:func:`watermark_key`) and its latest feed marker (``c|SYMBOL``, epoch ms, see
:func:`~chronox_stream.domain.tick_bars.complete_key`); the aggregator adds when it last
heard the symbol (``h|SYMBOL``, wall-clock epoch ms, see :func:`heard_key`).
On the changelog each key is one compacted record: a partial as 104 fixed bytes,
a mark as one byte, a minute's trades as 8 bytes each, the watermark, the marker
and the heard stamp as 8 bytes; a removed key is a tombstone.
:class:`TrackedState` records which keys changed since the last drain, so one
batch of ticks costs one changelog record per window it touched, not one per tick.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from typing import Any

from chronox_stream.domain.tick_bars import Partial

_PARTIAL = struct.Struct(">qqdqqdqqddqqqq")
_WATERMARK = struct.Struct(">q")
MARK = b"\x01"

StateValue = Partial | bool | int | set[int]


def _price(value: float | None) -> float:
    return math.nan if value is None else value


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


def encode_value(value: StateValue) -> bytes:
    if isinstance(value, Partial):
        return _PARTIAL.pack(
            value.start, value.end, _price(value.open), *value.open_at, _price(value.close),
            *value.close_at, _price(value.high), _price(value.low), value.volume,
            value.notional, value.transactions, value.position,
        )  # fmt: skip
    if isinstance(value, bool):
        return MARK
    if isinstance(value, set):
        return struct.pack(f">{len(value)}q", *value)
    return _WATERMARK.pack(value)


def decode_value(key: str, raw: bytes) -> StateValue:
    """The value of ``key``; its kind follows from the key (see the module docstring)."""
    if key.startswith("m|"):
        (start, end, open_, open_ts, open_seq, close, close_ts, close_seq, high, low, volume,
         notional, transactions, position) = _PARTIAL.unpack(raw)  # fmt: skip
        return Partial(start, end, _optional(open_), (open_ts, open_seq), _optional(close),
                       (close_ts, close_seq), _optional(high), _optional(low), volume,
                       notional, transactions, position)  # fmt: skip
    if key.startswith("e|"):
        return True
    if key.startswith("t|"):
        return set(struct.unpack(f">{len(raw) // 8}q", raw))
    (watermark,) = _WATERMARK.unpack(raw)
    return int(watermark)


def watermark_key(symbol: str) -> str:
    return f"w|{symbol}"


def heard_key(symbol: str) -> str:
    return f"h|{symbol}"


def stamp_due(heard_ms: int, stamped_ms: int | None, horizon_ms: int) -> bool:
    """Whether the heard stamp on the changelog should move to ``heard_ms``: when it lags
    by a tenth of the horizon (at most an hour), so an active symbol adds one 8-byte
    record an hour, not one per flush, and a restart misjudges its silence by no more."""
    return stamped_ms is None or heard_ms - stamped_ms >= min(horizon_ms // 10, 3_600_000)


def silent_too_long(heard_ms: int, now_ms: int, horizon_ms: int) -> bool:
    """Whether a symbol last heard at ``heard_ms`` (wall clock) is to be purged at ``now_ms``.

    Wall clock, not event time: a replay of 2015's ticks is heard now, and its state
    must last while the replay runs.
    """
    return now_ms - heard_ms > horizon_ms


def restore(records: Iterable[tuple[bytes, bytes | None]]) -> dict[str, dict[str, object]]:
    """The state, per symbol, that a changelog's records (in offset order) leave behind."""
    states: dict[str, dict[str, object]] = {}
    for raw_key, raw_value in records:
        key = raw_key.decode()
        state = states.setdefault(key.split("|")[1], {})
        if raw_value is None:
            state.pop(key, None)
        else:
            state[key] = decode_value(key, raw_value)
    return {symbol: state for symbol, state in states.items() if state}


class TrackedState(dict[str, object]):
    """A dict that remembers which keys were set or removed since the last :meth:`drain`.

    A ``dict`` subclass, not a ``MutableMapping`` over one: the fold reads the state a few
    times per tick, and ``get``, ``in`` and ``[]`` stay the dict's own C methods. Every
    method that changes the dict is overridden to record the keys it changes (a plain
    ``dict`` method would bypass :meth:`__setitem__`); changing it any other way (e.g.
    ``dict.__setitem__(state, ...)``) goes unrecorded.
    """

    def __init__(self, initial: dict[str, object] | None = None) -> None:
        super().__init__(initial or {})
        self._changed: set[str] = set()

    def __setitem__(self, key: str, value: object) -> None:
        dict.__setitem__(self, key, value)
        self._changed.add(key)

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        self._changed.add(key)

    def pop(self, key: str, *default: object) -> object:
        if key in self:
            self._changed.add(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, object]:
        key, value = dict.popitem(self)
        self._changed.add(key)
        return key, value

    def clear(self) -> None:
        self._changed.update(self)
        dict.clear(self)

    def setdefault(self, key: str, default: object = None) -> object:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: object) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> TrackedState:  # type: ignore[override,misc]
        self.update(other)
        return self

    def drain(self) -> list[tuple[bytes, bytes | None]]:
        """The changelog records of what changed since the last drain (``None``: removed)."""
        records: list[tuple[bytes, bytes | None]] = []
        for key in sorted(self._changed):
            value = dict.get(self, key)
            encoded = None if value is None else encode_value(value)  # type: ignore[arg-type]
            records.append((key.encode(), encoded))
        self._changed.clear()
        return records
