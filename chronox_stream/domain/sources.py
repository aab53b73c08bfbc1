"""The data sources: one declaration each, from which the rest is derived (pure).

A source is at once a phase of a strategy (``flatpack+api``) and the ``source`` of the bars
that phase emits. Its declaration (:class:`SourceSpec`) gives its name, its precedence rank,
its place in a strategy's execution order and the registry field its completion moves. Every
other definition is read from the declarations, never written again:

- the phase names and the parsing of strategies (``domain.strategy``);
- the precedence ranks (:data:`SOURCE_RANK`: dedup, ``domain.precedence``, envelopes);
- the registry entry's field per phase (:data:`PHASE_FIELD`, ``domain.registry``);
- the phase dispatch (the runner bound by ``sources.registry.declare_source``, where the I/O
  lives, so this module stays pure);
- the request schema's strategy pattern (:func:`strategy_pattern`, ``contracts.control``);
- PostgreSQL's CHECK constraint on ``source`` and its rank function (``sinks.postgres``).

The built-in sources are declared here; an extra one is declared by a module the worker
imports at start (``CHRONOX_SOURCE_MODULES``). Declaring the same source again is harmless;
declaring another source under a taken name, or in a taken place of the order, is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

#: A source's name as carried by envelopes and rows (one of the declared names).
Source = str
#: A phase of a strategy: the name of the source it fetches from.
Phase = str
#: The registry entry fields that record when a phase last completed.
RegistryField = Literal["last_backfill", "last_snapshot", "last_stream"]

#: Lower-case, so that a strategy reads the same everywhere; at most 32 characters.
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: The dedup table keeps a bar's rank in four bits.
MAX_RANK = 15


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSpec:
    """The one declaration of a source.

    ``rank`` decides precedence (a bar replaces an emitted one only from a rank at least
    as high; equal ranks are peers), ``order`` where the phase runs in a strategy (lower
    first: bulk history, then REST fills, then now, then live), ``registry_field`` which
    time of the registry entry its completion moves, and ``fetches`` whether the backfill
    agent runs a fetching runner for it (``stream`` only registers the symbol).
    """

    name: str
    rank: int
    order: int
    registry_field: RegistryField
    fetches: bool = True


BUILTIN: tuple[SourceSpec, ...] = (
    SourceSpec(name="flatpack", rank=3, order=10, registry_field="last_backfill"),
    SourceSpec(name="api", rank=3, order=20, registry_field="last_backfill"),
    SourceSpec(name="snapshot", rank=1, order=30, registry_field="last_snapshot"),
    SourceSpec(name="stream", rank=2, order=40, registry_field="last_stream", fetches=False),
)

_declared: dict[str, SourceSpec] = {spec.name: spec for spec in BUILTIN}


def declare(spec: SourceSpec) -> SourceSpec:
    """Add ``spec`` to the declared sources; ``ValueError`` if it cannot be one."""
    if NAME_RE.fullmatch(spec.name) is None:
        raise ValueError(f"source name {spec.name!r} must match {NAME_RE.pattern}")
    if not 1 <= spec.rank <= MAX_RANK:
        raise ValueError(f"rank of source {spec.name!r} must be from 1 to {MAX_RANK}")
    known = _declared.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"source {spec.name!r} is declared already as {known}")
    clash = [s.name for s in _declared.values() if s.order == spec.order and s.name != spec.name]
    if clash:
        raise ValueError(f"source {spec.name!r} takes the order {spec.order} of {clash[0]!r}")
    _declared[spec.name] = spec
    _derive()
    return spec


def declared() -> tuple[SourceSpec, ...]:
    """Every declared source, in phase order."""
    return in_phase_order(_declared.values())


def spec_of(name: str) -> SourceSpec:
    """The declaration of source ``name``; ``KeyError`` for an undeclared one."""
    return _declared[name]


def in_phase_order(specs: Iterable[SourceSpec]) -> tuple[SourceSpec, ...]:
    """The order phases run in and strategies are written in (lowest ``order`` first)."""
    return tuple(sorted(specs, key=lambda s: s.order))


def by_precedence(specs: Iterable[SourceSpec]) -> tuple[SourceSpec, ...]:
    """Highest rank first; peers in phase order (flatpack, api, stream, snapshot)."""
    return tuple(sorted(specs, key=lambda s: (-s.rank, s.order)))


def strategy_pattern(specs: Iterable[SourceSpec]) -> str:
    """The JSON Schema pattern of a strategy: ``+``-joined phase names (duplicates and the
    order are the parser's to judge)."""
    names = "|".join(s.name for s in in_phase_order(specs))
    return rf"^({names})(\+({names}))*$"


_ranks: dict[Source, int] = {}
_fields: dict[Phase, RegistryField] = {}


def _derive() -> None:
    """Refresh the lookups below from the declarations (in place: importers hold them)."""
    _ranks.clear()
    _ranks.update((s.name, s.rank) for s in by_precedence(_declared.values()))
    _fields.clear()
    _fields.update((s.name, s.registry_field) for s in declared())


#: Source precedence: a bar may replace an emitted one only from a source ranked at least as
#: high. Highest first; kept in step with the declarations (a plain lookup: dedup reads it per bar).
SOURCE_RANK: Mapping[Source, int] = _ranks
#: The registry field each phase's completion time is kept in, in phase order.
PHASE_FIELD: Mapping[Phase, RegistryField] = _fields
_derive()
