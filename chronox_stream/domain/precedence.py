"""Which version of a bar wins (pure): the precedence rule shared by dedup and the sinks.

A new bar for a ``dedup_key`` already kept relates to the kept one in one of four ways
(:func:`relation`), judged on OHLCV and on the optional fields (vwap, transactions), whose
values compare as ``domain.identity`` defines (the same definition as dedup's and SQL's):

- **same**: same OHLCV and the same optional fields;
- **enrichment**: same OHLCV, and the new bar adds a field the kept one lacks (flat files
  carry no vwap, the REST API does) without contradicting one both have;
- **poorer**: same OHLCV, nothing added, some field missing;
- **correction**: any value differs (OHLCV, or a field both have).

Whether it is taken depends on the sources' ranks (flatpack = api > stream > snapshot):
a correction or an enrichment needs a rank at least as high, a same or poorer bar a
strictly higher one (it then only marks a provisional bar final). A correction replaces
the kept bar whole; anything else keeps its OHLCV and fills the fields it lacks, so a
poorer bar never removes a field. Only a correction is a new revision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from chronox_stream.domain.bars import Bar
from chronox_stream.domain.identity import Features, features_of, ohlcv_key
from chronox_stream.domain.sources import SOURCE_RANK, Source

Relation = Literal["same", "enrichment", "poorer", "correction"]


def relation(same_ohlcv: bool, kept: Features, new: Features) -> Relation:
    """How a new bar relates to the kept one, given whether their OHLCV are equal."""
    if not same_ohlcv:
        return "correction"
    adds = lacks = False
    for old, value in ((kept.vwap, new.vwap), (kept.transactions, new.transactions)):
        if old is None:
            adds = adds or value is not None
        elif value is None:
            lacks = True
        elif old != value:
            return "correction"
    if adds:
        return "enrichment"
    return "poorer" if lacks else "same"


def compare(kept: Bar, new: Bar) -> Relation:
    """:func:`relation` of two bars of the same ``dedup_key``."""
    return relation(ohlcv_key(kept) == ohlcv_key(new), features_of(kept), features_of(new))


def admits(rel: Relation, old_rank: int, new_rank: int) -> bool:
    """The rule on ranks: a correction or an enrichment needs an equal or higher rank,
    a same or poorer bar a strictly higher one."""
    if rel in ("correction", "enrichment"):
        return new_rank >= old_rank
    return new_rank > old_rank


def filled(kept: Features, new: Features) -> Features:
    """``kept`` with the fields it lacks taken from ``new``."""
    return Features(
        kept.vwap if kept.vwap is not None else new.vwap,
        kept.transactions if kept.transactions is not None else new.transactions,
    )


@dataclass(frozen=True, slots=True)
class Merge:
    """The kept bar after a new one was taken: its values, source, and whether it was revised."""

    bar: Bar
    source: Source
    revised: bool


def merge(old: Bar, old_source: Source, new: Bar, new_source: Source) -> Merge | None:
    """The kept bar after ``new`` from ``new_source`` arrives; ``None`` when it stays as is.

    A correction replaces it (a new revision); an enrichment fills its missing fields;
    a same or poorer bar from a higher source takes over the source. The source of an
    enrichment from an equal rank stays the kept one's: its OHLCV came from there.
    """
    rel = compare(old, new)
    old_rank, new_rank = SOURCE_RANK[old_source], SOURCE_RANK[new_source]
    if not admits(rel, old_rank, new_rank):
        return None
    if rel == "correction":
        return Merge(new, new_source, revised=True)
    fields = filled(features_of(old), features_of(new))
    bar = replace(old, vwap=fields.vwap, transactions=fields.transactions)
    return Merge(bar, new_source if new_rank > old_rank else old_source, revised=False)


def collapse(items: Iterable[tuple[Bar, Source]]) -> list[tuple[Bar, Source]]:
    """One bar per (symbol, tf, ts), applying :func:`merge` in arrival order."""
    kept: dict[tuple[str, str, object], tuple[Bar, Source]] = {}
    for bar, source in items:
        key = (bar.symbol, bar.tf, bar.ts)
        current = kept.get(key)
        if current is None:
            kept[key] = (bar, source)
            continue
        merged = merge(current[0], current[1], bar, source)
        if merged is not None:
            kept[key] = (merged.bar, merged.source)
    return list(kept.values())
