"""The symbol registry (pure): entries, the commands that change them, and how they apply.

Every change goes through the registry topic as a command keyed by symbol, and
one agent applies commands in order to the registry table: a single writer per
symbol, so concurrent CLI edits and phase completions never race.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import orjson

from chronox_stream.contracts.control import is_symbol
from chronox_stream.contracts.rejects import Rejected, decode_object
from chronox_stream.domain.sources import PHASE_FIELD, Phase
from chronox_stream.domain.strategy import DEFAULT_STRATEGY, format_strategy, parse_strategy

Op = Literal[
    "add",
    "enable",
    "disable",
    "remove",
    "running",
    "phase_done",
    "phase_failed",
    "stream",
    "streamed",
    "reset",
]
Status = Literal["idle", "running", "error"]



@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryEntry:
    symbol: str
    strategy: str = DEFAULT_STRATEGY
    enabled: bool = True
    status: Status = "idle"
    last_error: str | None = None
    last_backfill: datetime | None = None
    last_snapshot: datetime | None = None
    last_stream: datetime | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> RegistryEntry:
        doc: dict[str, Any] = orjson.loads(raw)
        for key in ("last_backfill", "last_snapshot", "last_stream"):
            if doc.get(key):
                doc[key] = datetime.fromisoformat(doc[key]).astimezone(UTC)
        return cls(**doc)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryCommand:
    op: Op
    symbol: str
    strategy: str | None = None
    enabled: bool | None = None
    phase: Phase | None = None
    at: datetime | None = None
    error: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps({k: v for k, v in asdict(self).items() if v is not None})


def streaming_symbols(entries: Iterable[RegistryEntry]) -> set[str]:
    """The symbols to subscribe on the WebSocket: enabled, with ``stream`` in their strategy."""
    return {e.symbol for e in entries if e.enabled and "stream" in parse_strategy(e.strategy)}


def stale_running(entries: Iterable[RegistryEntry]) -> list[str]:
    """Symbols left ``running``: after a rebalance their work items run again from the start."""
    return sorted(e.symbol for e in entries if e.status == "running")


def parse_command(raw: bytes) -> RegistryCommand:
    """Decode a registry command; ``Rejected`` explains what is wrong with it.

    Every field is checked for its type (``enabled`` a boolean, ``strategy``, ``phase``,
    ``at`` and ``error`` strings), so nothing but a valid command reaches the table.
    """
    doc = decode_object(raw, RegistryCommand.__dataclass_fields__, "registry command")
    op = doc.get("op")
    if type(op) is not str or op not in get_args(Op):
        raise Rejected("invalid_value", f"op must be one of {', '.join(get_args(Op))}")
    symbol = doc.get("symbol")
    if not is_symbol(symbol):
        raise Rejected("invalid_symbol", f"invalid symbol {str(symbol)[:40]!r}")
    for key, kind in (("strategy", str), ("enabled", bool), ("phase", str), ("at", str),
                      ("error", str)):  # fmt: skip
        if doc.get(key) is not None and type(doc[key]) is not kind:
            raise Rejected("invalid_type", f"field {key!r} must be of type {kind.__name__}")
    if doc.get("strategy") is not None:
        try:
            doc["strategy"] = format_strategy(parse_strategy(doc["strategy"]))
        except ValueError as exc:
            raise Rejected("invalid_strategy", str(exc)) from None
    if op in ("phase_done", "phase_failed"):
        if doc.get("phase") not in PHASE_FIELD or doc.get("at") is None:
            raise Rejected("missing_field", f"{op} needs a valid 'phase' and 'at'")
    elif doc.get("phase") is not None and doc["phase"] not in PHASE_FIELD:
        raise Rejected("invalid_value", f"phase must be one of {', '.join(PHASE_FIELD)}")
    if op == "streamed" and doc.get("at") is None:
        raise Rejected("missing_field", "streamed needs 'at'")
    if doc.get("at") is not None:
        doc["at"] = _instant(doc["at"])
    return RegistryCommand(**doc)


def _instant(text: str) -> datetime:
    """An ISO-8601 time with a zone, in UTC; ``Rejected`` for anything else."""
    try:
        instant = datetime.fromisoformat(text)
        if instant.tzinfo is not None:
            return instant.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: at the ends of the calendar
        pass
    raise Rejected("invalid_value", "'at' must be an ISO-8601 time with a zone")


def apply(entry: RegistryEntry | None, command: RegistryCommand) -> RegistryEntry | None:
    """The entry after ``command``; ``None`` means the symbol is not (or no longer) registered.

    Phase reports for an unregistered symbol (an ad-hoc ``--symbols`` run) create
    no entry: the registry lists what the user registered, nothing else. The one
    exception is ``stream``, a run's stream phase: streaming is kept up by the
    registry, so it registers the symbol (with the run's strategy) or adds the
    phase to the registered strategy.
    """
    if command.op == "stream":
        if entry is None:
            return RegistryEntry(symbol=command.symbol, strategy=command.strategy or "stream")
        phases = parse_strategy(entry.strategy)
        if "stream" in phases:
            return entry
        return replace(entry, strategy=format_strategy((*phases, "stream")))
    if command.op == "add":
        base = entry or RegistryEntry(symbol=command.symbol)
        return replace(
            base,
            strategy=command.strategy or base.strategy,
            enabled=base.enabled if command.enabled is None else command.enabled,
        )
    if entry is None or command.op == "remove":
        return None
    return _update(entry, command)


def _update(entry: RegistryEntry, command: RegistryCommand) -> RegistryEntry:
    """A registered symbol's entry after a toggle or a worker's report."""
    if command.op in ("enable", "disable"):
        return replace(entry, enabled=command.op == "enable")
    if command.op == "running":
        return replace(entry, status="running")
    if command.op == "reset":  # a dead worker's "running"; its work item is redelivered
        return replace(entry, status="idle") if entry.status == "running" else entry
    if command.op == "phase_failed":
        return replace(entry, status="error", last_error=command.error)
    if command.op == "streamed":  # bars keep coming: the symbol's status is not the stream's
        if entry.last_stream is not None and command.at is not None:
            return replace(entry, last_stream=max(entry.last_stream, command.at))
        return replace(entry, last_stream=command.at)
    assert command.phase is not None and command.at is not None
    done = replace(entry, status="idle", last_error=None)
    if PHASE_FIELD[command.phase] == "last_snapshot":
        return replace(done, last_snapshot=command.at)
    if PHASE_FIELD[command.phase] == "last_stream":
        return replace(done, last_stream=command.at)
    return replace(done, last_backfill=command.at)
