"""Ingestion strategies: a ``+``-joined, duplicate-free set of phases (pure)."""

from __future__ import annotations

from typing import Literal, get_args

Phase = Literal["flatpack", "api", "snapshot", "stream"]

#: Canonical execution order: bulk history first, then the REST fill, then now, then live.
PHASES: tuple[Phase, ...] = get_args(Phase)

#: What a symbol runs when neither the request nor the registry names a strategy.
DEFAULT_STRATEGY = "flatpack+api+snapshot+stream"


def parse_strategy(text: str) -> tuple[Phase, ...]:
    """Parse ``"flatpack+api"`` into phases in canonical order.

    Raises ``ValueError`` with a message a user can act on for an empty
    strategy, an unknown phase or a phase named twice.
    """
    parts = [p.strip() for p in text.split("+")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"empty phase in strategy {text!r}; join phases with '+'")
    unknown = [p for p in parts if p not in PHASES]
    if unknown:
        raise ValueError(
            f"unknown phase {unknown[0]!r} in strategy {text!r}; expected phases: "
            + ", ".join(PHASES)
        )
    if len(set(parts)) != len(parts):
        raise ValueError(f"strategy {text!r} names a phase twice")
    return tuple(p for p in PHASES if p in parts)


def format_strategy(phases: tuple[Phase, ...]) -> str:
    """The canonical string form of a set of phases (inverse of ``parse_strategy``)."""
    return "+".join(p for p in PHASES if p in phases)
