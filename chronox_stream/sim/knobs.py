"""Test knobs: faults and limits the simulator applies, set by CLI flags and ``/_sim/knobs``.

:class:`Knobs` is an immutable value; :class:`KnobBoard` holds the current one,
the startup one (for ``reset``), and consumes the count-down knobs
(``fail_next``, ``malformed_next``). Random faults draw from a
``random.Random`` seeded with the market seed, so a given sequence of
requests meets the same faults every run. The API key is write-only: no view
of the knobs shows it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, time
from http import HTTPStatus
from typing import Any

Listener = Callable[["Knobs", "Knobs"], Awaitable[None]]
_SERVER_ERRORS = frozenset(s.value for s in HTTPStatus if 500 <= s.value <= 599)
#: Polygon publishes a day's flat files the next morning, New York time; so does the simulator.
DEFAULT_PUBLISH_AT = time(11, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Knobs:
    """Everything a test may change at run time (see docs/simulator.md for each knob)."""

    api_key: str = field(default="", repr=False)
    rate_limit: int = 0
    rate_window_s: int = 60
    fail_next: int = 0
    fail_rate: float = 0.0
    fail_status: int = 500
    malformed_next: int = 0
    page_size: int | None = None
    missing_days: frozenset[date] = frozenset()
    flatfiles_publish_at: time = DEFAULT_PUBLISH_AT
    late_trades: bool = True
    forbidden_tickers: frozenset[str] = frozenset()
    ws_drop_after: int | None = None
    ws_max_connections: int = 1

    def __post_init__(self) -> None:
        _check(self.rate_limit >= 0, "rate_limit must be >= 0")
        _check(self.rate_window_s >= 1, "rate_window_s must be >= 1")
        _check(self.fail_next >= 0, "fail_next must be >= 0")
        _check(0.0 <= self.fail_rate <= 1.0, "fail_rate must be within [0, 1]")
        _check(self.fail_status in _SERVER_ERRORS, "fail_status must be a 5xx HTTP status")
        _check(self.malformed_next >= 0, "malformed_next must be >= 0")
        _check(self.page_size is None or self.page_size >= 1, "page_size must be >= 1 or null")
        _check(self.ws_drop_after is None or self.ws_drop_after >= 1, "ws_drop_after must be >= 1")
        _check(self.ws_max_connections >= 1, "ws_max_connections must be >= 1")

    def public(self) -> dict[str, Any]:
        """JSON view: every knob but the key, plus whether a key is required."""
        view: dict[str, Any] = {"api_key_required": bool(self.api_key)}
        for f in fields(self):
            if f.name == "api_key":
                continue
            value = getattr(self, f.name)
            if isinstance(value, frozenset):
                value = sorted(str(v) for v in value)
            elif isinstance(value, time):
                value = value.isoformat(timespec="minutes")
            view[f.name] = value
        return view

    def updated(self, changes: Mapping[str, Any]) -> Knobs:
        """A copy with ``changes`` (JSON values) applied; ``ValueError`` names a bad one."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        _check(not unknown, f"unknown knob(s): {', '.join(unknown)}")
        return replace(self, **{name: _coerce(name, value) for name, value in changes.items()})


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


_INTS = {"rate_limit", "rate_window_s", "fail_next", "fail_status", "malformed_next",
         "ws_max_connections"}
_OPTIONAL_INTS = {"page_size", "ws_drop_after"}


def _coerce(name: str, value: Any) -> Any:
    """One JSON value as the knob's type, strictly (no bool for int, no str for number)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if name in _INTS or (name in _OPTIONAL_INTS and value is not None):
        _check(is_int, f"{name} must be an integer")
        return value
    if name in _OPTIONAL_INTS:
        return None
    if name == "fail_rate":
        _check(is_int or isinstance(value, float), "fail_rate must be a number")
        return float(value)
    if name == "late_trades":
        _check(isinstance(value, bool), "late_trades must be true or false")
        return value
    if name == "api_key":
        _check(isinstance(value, str), "api_key must be a string")
        return value
    if name == "flatfiles_publish_at":
        _check(isinstance(value, str), "flatfiles_publish_at must be a string HH:MM")
        return parse_publish_at(value)
    _check(
        isinstance(value, list) and all(isinstance(v, str) for v in value),
        f"{name} must be a list of strings",
    )
    if name == "missing_days":
        try:
            return frozenset(date.fromisoformat(v) for v in value)
        except ValueError:
            raise ValueError("missing_days must hold YYYY-MM-DD dates") from None
    return frozenset(v.upper() for v in value)


def parse_publish_at(raw: str) -> time:
    """``HH:MM`` (New York time of the next calendar day); ``ValueError`` otherwise."""
    if re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", raw) is None:
        raise ValueError(f"flatfiles_publish_at must be HH:MM (00:00 to 23:59), not {raw!r}")
    return time.fromisoformat(raw)


class KnobBoard:
    """The live knobs of one simulator; listeners hear every change (e.g. to sync S3)."""

    def __init__(self, initial: Knobs, seed: int) -> None:
        self._initial = initial
        self._seed = seed
        self.current = initial
        self._rng = random.Random(seed)
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def update(self, changes: Mapping[str, Any]) -> Knobs:
        return await self._set(self.current.updated(changes))

    async def reset(self) -> Knobs:
        """Back to the startup knobs; the fault sequence restarts too."""
        self._rng = random.Random(self._seed)
        return await self._set(self._initial)

    async def _set(self, new: Knobs) -> Knobs:
        old, self.current = self.current, new
        for listener in self._listeners:
            await listener(old, new)
        return new

    def take_failure(self) -> int | None:
        """The injected 5xx status for this request, if it is to fail."""
        knobs = self.current
        if knobs.fail_next > 0:
            self.current = replace(knobs, fail_next=knobs.fail_next - 1)
            return knobs.fail_status
        if knobs.fail_rate > 0 and self._rng.random() < knobs.fail_rate:
            return knobs.fail_status
        return None

    def take_malformed(self) -> bool:
        """Whether this aggregates response is to be truncated."""
        knobs = self.current
        if knobs.malformed_next > 0:
            self.current = replace(knobs, malformed_next=knobs.malformed_next - 1)
            return True
        return False
