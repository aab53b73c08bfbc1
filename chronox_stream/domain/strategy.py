"""Ingestion strategies: a ``+``-joined, duplicate-free set of phases (pure).

The phases are the declared sources (``domain.sources``), run in their declared order:
bulk history first, then the REST fill, then now, then live.
"""

from __future__ import annotations

from chronox_stream.domain.sources import Phase, declared


def phases() -> tuple[Phase, ...]:
    """Every phase a strategy may name, in canonical execution order."""
    return tuple(spec.name for spec in declared())


#: What a symbol runs when neither the request nor the registry names a strategy.
DEFAULT_STRATEGY = "flatpack+api+snapshot+stream"


def parse_strategy(text: str) -> tuple[Phase, ...]:
    """Parse ``"flatpack+api"`` into phases in canonical order.

    Raises ``ValueError`` with a message a user can act on for an empty
    strategy, an unknown phase or a phase named twice.
    """
    known = phases()
    parts = [p.strip() for p in text.split("+")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"empty phase in strategy {text!r}; join phases with '+'")
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise ValueError(
            f"unknown phase {unknown[0]!r} in strategy {text!r}; expected phases: "
            + ", ".join(known)
        )
    if len(set(parts)) != len(parts):
        raise ValueError(f"strategy {text!r} names a phase twice")
    return tuple(p for p in known if p in parts)


def format_strategy(chosen: tuple[Phase, ...]) -> str:
    """The canonical string form of a set of phases (inverse of ``parse_strategy``)."""
    return "+".join(p for p in phases() if p in chosen)
