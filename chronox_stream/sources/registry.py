"""Declaring a source with its runner: where the pure declaration meets its I/O.

Adding a source is one call in a module of your own::

    async def run(phases: PhaseRunner, item: WorkItem, emitter: Emitter, now: datetime) -> None:
        bars = ...  # fetch with phases.rest, phases.days, or your own client
        await emitter.emit(bars, "vendor")

    declare_source(SourceSpec(name="vendor", rank=2, order=25,
                              registry_field="last_backfill"), run)

and the module's name in ``CHRONOX_SOURCE_MODULES``, which the worker and the ``chronox``
commands import at start (:func:`import_source_modules`). From then on ``vendor`` is a phase
of strategies (``api+vendor``), a source of envelopes, and a source PostgreSQL accepts with
its rank (see ``domain.sources`` for everything derived from the declaration).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from chronox_stream.contracts.work import WorkItem
from chronox_stream.domain.sources import SourceSpec, declare

if TYPE_CHECKING:
    from chronox_stream.runtime.emit import Emitter
    from chronox_stream.sources.phases import PhaseRunner

#: Fetches a source's bars for one work item and emits them under the source's name; it
#: gets the worker's shared clients (REST, flat files, coverage) through the ``PhaseRunner``.
Runner = Callable[["PhaseRunner", WorkItem, "Emitter", datetime], Awaitable[None]]

_runners: dict[str, Runner] = {}


def declare_source(spec: SourceSpec, runner: Runner) -> SourceSpec:
    """Declare a fetching source and bind the runner of its phase."""
    if not spec.fetches:
        raise ValueError(f"source {spec.name!r} fetches nothing: it has no runner")
    declare(spec)
    _runners[spec.name] = runner
    return spec


def runner_of(phase: str) -> Runner:
    """The runner of a fetching phase; ``ValueError`` for any other. The built-in runners
    are bound by ``sources.phases``, imported wherever a ``PhaseRunner`` exists to run one."""
    try:
        return _runners[phase]
    except KeyError:
        raise ValueError(f"{phase} is not a fetching phase") from None


def import_source_modules(names: str) -> None:
    """Import the comma-separated modules ``names`` (``CHRONOX_SOURCE_MODULES``): each
    declares its sources when imported."""
    for name in filter(None, (n.strip() for n in names.split(","))):
        importlib.import_module(name)
