"""Which version of a bar wins (pure): the source precedence rule, shared by dedup and sinks.

A different bar for the same ``dedup_key`` replaces the one already kept only if
its source ranks at least as high (flatpack = api > stream > snapshot), so
corrections pass and a partial snapshot never overwrites a final bar. An
identical bar replaces it only from a strictly higher source, which marks a
provisional bar final without churning between equal sources.
"""

from __future__ import annotations

from collections.abc import Iterable

from chronox_stream.bars import SOURCE_RANK, Bar, Source


def wins(same_content: bool, old_rank: int, new_rank: int) -> bool:
    """The rule on ranks: equal content needs a strictly higher rank, new content an equal one."""
    return new_rank > old_rank if same_content else new_rank >= old_rank


def replaces(old: Bar, old_source: Source, new: Bar, new_source: Source) -> bool:
    """True when ``new`` from ``new_source`` should replace ``old`` from ``old_source``."""
    return wins(new == old, SOURCE_RANK[old_source], SOURCE_RANK[new_source])


def collapse(items: Iterable[tuple[Bar, Source]]) -> list[tuple[Bar, Source]]:
    """One winner per (symbol, tf, ts), applying ``replaces`` in arrival order."""
    kept: dict[tuple[str, str, object], tuple[Bar, Source]] = {}
    for bar, source in items:
        key = (bar.symbol, bar.tf, bar.ts)
        current = kept.get(key)
        if current is None or replaces(current[0], current[1], bar, source):
            kept[key] = (bar, source)
    return list(kept.values())
