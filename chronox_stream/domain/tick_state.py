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
from collections.abc import Iterable, Iterator, MutableMapping

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


class TrackedState(MutableMapping[str, object]):
    """A dict that remembers which keys were set or removed since the last :meth:`drain`."""

    def __init__(self, initial: dict[str, object] | None = None) -> None:
        self._data: dict[str, object] = dict(initial or {})
        self._changed: set[str] = set()

    def __getitem__(self, key: str) -> object:
        return self._data[key]

    def __setitem__(self, key: str, value: object) -> None:
        self._data[key] = value
        self._changed.add(key)

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._changed.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: object = None) -> object:
        return self._data.get(key, default)  # the fold's hot path: skip Mapping's try/except

    def __contains__(self, key: object) -> bool:
        return key in self._data  # Mapping's would raise and catch a KeyError for a new key

    def pop(self, key: str, *default: object) -> object:
        """Mapping's ``pop``, in one lookup; a removed key counts as changed."""
        if key in self._data:
            self._changed.add(key)
        return self._data.pop(key, *default)

    def drain(self) -> list[tuple[bytes, bytes | None]]:
        """The changelog records of what changed since the last drain (``None``: removed)."""
        records: list[tuple[bytes, bytes | None]] = []
        for key in sorted(self._changed):
            value = self._data.get(key)
            encoded = None if value is None else encode_value(value)  # type: ignore[arg-type]
            records.append((key.encode(), encoded))
        self._changed.clear()
        return records
