"""The source declarations and what is derived from them: phases, ranks, registry fields,
the request schema's strategy pattern, and what a declaration may not be."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib.resources import files

import jsonschema
import pytest

from chronox_stream.contracts.control import SCHEMA_FILE, request_schema
from chronox_stream.domain.sources import (
    BUILTIN,
    PHASE_FIELD,
    SOURCE_RANK,
    SourceSpec,
    by_precedence,
    declare,
    strategy_pattern,
)
from chronox_stream.domain.strategy import DEFAULT_STRATEGY, format_strategy, parse_strategy
from chronox_stream.sources.phases import PhaseRunner
from chronox_stream.sources.registry import declare_source, runner_of

EXTRA = SourceSpec(name="extra", rank=2, order=35, registry_field="last_backfill")


def test_the_built_in_sources_keep_their_documented_precedence_and_order() -> None:
    """flatpack = api > stream > snapshot; phases run flatpack, api, snapshot, stream."""
    rank = {s.name: s.rank for s in BUILTIN}
    assert rank["flatpack"] == rank["api"] > rank["stream"] > rank["snapshot"]
    assert {name: SOURCE_RANK[name] for name in rank} == rank
    assert parse_strategy(DEFAULT_STRATEGY) == ("flatpack", "api", "snapshot", "stream")
    assert [s.name for s in by_precedence(BUILTIN)] == ["flatpack", "api", "stream", "snapshot"]


def test_each_phase_moves_its_declared_registry_field() -> None:
    assert {name: PHASE_FIELD[name] for name in ("flatpack", "api", "snapshot", "stream")} == {
        "flatpack": "last_backfill",
        "api": "last_backfill",
        "snapshot": "last_snapshot",
        "stream": "last_stream",
    }


def test_the_published_request_schema_is_the_rendering_for_the_built_in_sources() -> None:
    published = json.loads(files("chronox_stream.contracts").joinpath(SCHEMA_FILE).read_text())
    assert request_schema(BUILTIN) == published


def test_a_declared_source_is_a_phase_of_the_schema_strategy_pattern() -> None:
    extended = request_schema((*BUILTIN, EXTRA))
    jsonschema.validate({"request_id": "r1", "strategy": "api+extra"}, extended)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"request_id": "r1", "strategy": "api+extra"}, request_schema(BUILTIN))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"request_id": "r1", "strategy": "api+other"}, extended)
    assert strategy_pattern((*BUILTIN, EXTRA)).count("extra") == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (replace(EXTRA, name="Extra"), "must match"),
        (replace(EXTRA, name="a+b"), "must match"),
        (replace(EXTRA, rank=0), "rank"),
        (replace(EXTRA, rank=16), "rank"),  # the dedup table keeps four bits of rank
        (replace(EXTRA, name="api", rank=5), "declared already"),
        (replace(EXTRA, order=20), "order 20 of 'api'"),
    ],
)
def test_a_declaration_that_cannot_be_a_source_is_refused(spec: SourceSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        declare(spec)
    assert spec.name not in SOURCE_RANK or SOURCE_RANK[spec.name] != spec.rank


def test_declaring_a_built_in_source_again_changes_nothing() -> None:
    for spec in BUILTIN:
        assert declare(spec) is spec
    assert format_strategy(parse_strategy("stream+api")) == "api+stream"


def test_only_fetching_sources_have_runners() -> None:
    (stream,) = [s for s in BUILTIN if not s.fetches]

    async def run(*_: object) -> None:
        raise AssertionError("never run")

    with pytest.raises(ValueError, match="fetches nothing"):
        declare_source(stream, run)
    with pytest.raises(ValueError, match="not a fetching phase"):
        runner_of(stream.name)
    assert [runner_of(s.name) for s in BUILTIN if s.fetches] == [
        PhaseRunner.flatpack, PhaseRunner.api, PhaseRunner.snapshot
    ]
