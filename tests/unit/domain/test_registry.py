"""Registry commands and how they change an entry."""

from datetime import UTC, datetime

import orjson
import pytest

from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.registry import (
    RegistryCommand,
    RegistryEntry,
    apply,
    parse_command,
    stale_running,
    streaming_symbols,
)

AT = datetime(2024, 1, 17, 21, tzinfo=UTC)


def run(*commands: RegistryCommand) -> RegistryEntry | None:
    entry = None
    for command in commands:
        entry = apply(entry, parse_command(command.to_json()))
    return entry


def test_add_then_toggle_keeps_the_strategy() -> None:
    entry = run(
        RegistryCommand(op="add", symbol="AAPL", strategy="api+flatpack"),
        RegistryCommand(op="disable", symbol="AAPL"),
    )
    assert entry == RegistryEntry(symbol="AAPL", strategy="flatpack+api", enabled=False)
    assert (
        run(RegistryCommand(op="add", symbol="AAPL"), RegistryCommand(op="remove", symbol="AAPL"))
        is None
    )


def test_timestamp_updates_per_phase() -> None:
    entry = run(
        RegistryCommand(op="add", symbol="AAPL"),
        RegistryCommand(op="running", symbol="AAPL"),
        RegistryCommand(op="phase_done", symbol="AAPL", phase="api", at=AT),
        RegistryCommand(op="phase_done", symbol="AAPL", phase="snapshot", at=AT.replace(hour=22)),
    )
    assert entry is not None
    assert entry.last_backfill == AT
    assert entry.last_snapshot == AT.replace(hour=22)
    assert entry.last_stream is None
    assert entry.status == "idle"


def test_a_failure_is_kept_until_the_next_success() -> None:
    entry = run(
        RegistryCommand(op="add", symbol="AAPL"),
        RegistryCommand(op="phase_failed", symbol="AAPL", phase="api", at=AT, error="HTTP 403"),
    )
    assert entry is not None and (entry.status, entry.last_error) == ("error", "HTTP 403")
    entry = apply(entry, RegistryCommand(op="phase_done", symbol="AAPL", phase="api", at=AT))
    assert entry is not None and (entry.status, entry.last_error) == ("idle", None)


def test_reports_for_unregistered_symbols_create_nothing() -> None:
    assert run(RegistryCommand(op="phase_done", symbol="ZZZ", phase="api", at=AT)) is None


def test_a_stream_phase_registers_the_symbol_or_adds_the_phase() -> None:
    new = run(RegistryCommand(op="stream", symbol="MSFT", strategy="snapshot+stream"))
    assert new == RegistryEntry(symbol="MSFT", strategy="snapshot+stream")
    grown = run(
        RegistryCommand(op="add", symbol="AAPL", strategy="api", enabled=False),
        RegistryCommand(op="stream", symbol="AAPL", strategy="snapshot+stream"),
    )
    assert grown == RegistryEntry(symbol="AAPL", strategy="api+stream", enabled=False)


def test_last_stream_only_moves_forward_and_leaves_the_status_alone() -> None:
    later = AT.replace(minute=5)
    entry = run(
        RegistryCommand(op="add", symbol="AAPL"),
        RegistryCommand(op="running", symbol="AAPL"),
        RegistryCommand(op="streamed", symbol="AAPL", at=later),
        RegistryCommand(op="streamed", symbol="AAPL", at=AT),  # a corrected older minute
    )
    assert entry is not None and (entry.last_stream, entry.status) == (later, "running")


def test_only_enabled_symbols_with_the_stream_phase_are_streamed() -> None:
    entries = [
        RegistryEntry(symbol="AAPL", strategy="snapshot+stream"),
        RegistryEntry(symbol="MSFT", strategy="api+stream", enabled=False),
        RegistryEntry(symbol="NVDA", strategy="flatpack+api"),
    ]
    assert streaming_symbols(entries) == {"AAPL"}


def test_a_stale_running_state_is_reset_and_nothing_else_is() -> None:
    entries = [
        run(RegistryCommand(op="add", symbol="AAPL"), RegistryCommand(op="running", symbol="AAPL")),
        run(RegistryCommand(op="add", symbol="MSFT")),
    ]
    assert stale_running([e for e in entries if e]) == ["AAPL"]
    reset = apply(entries[0], RegistryCommand(op="reset", symbol="AAPL"))
    assert reset is not None and reset.status == "idle"
    failed = run(
        RegistryCommand(op="add", symbol="NVDA"),
        RegistryCommand(op="phase_failed", symbol="NVDA", phase="api", at=AT, error="HTTP 500"),
        RegistryCommand(op="reset", symbol="NVDA"),
    )
    assert failed is not None and failed.status == "error", "an error is not a stale run"


def test_entries_survive_the_wire() -> None:
    entry = RegistryEntry(symbol="BRK.B", last_backfill=AT, last_error="x")
    assert RegistryEntry.from_json(entry.to_json()) == entry


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"op": "add", "symbol": "aapl"}, "invalid_symbol"),
        ({"op": "explode", "symbol": "AAPL"}, "invalid_value"),
        ({"op": "add", "symbol": "AAPL", "strategy": "api+api"}, "invalid_strategy"),
        ({"op": "add", "symbol": "AAPL", "owner": "me"}, "unknown_field"),
        ({"op": "phase_done", "symbol": "AAPL", "phase": "api"}, "missing_field"),
        ({"op": "streamed", "symbol": "AAPL"}, "missing_field"),
        ({"op": "add", "symbol": "AAPL\n"}, "invalid_symbol"),
        ({"op": "add", "symbol": "AAPL", "enabled": "no"}, "invalid_type"),
        ({"op": "add", "symbol": "AAPL", "enabled": 0}, "invalid_type"),
        ({"op": "add", "symbol": "AAPL", "strategy": 5}, "invalid_type"),
        ({"op": "add", "symbol": "AAPL", "phase": "ftp"}, "invalid_value"),
        ({"op": "phase_failed", "symbol": "AAPL", "phase": "api", "at": AT.isoformat(),
          "error": {"code": 500}}, "invalid_type"),  # fmt: skip
        ({"op": "streamed", "symbol": "AAPL", "at": 1705525200}, "invalid_type"),
        ({"op": "streamed", "symbol": "AAPL", "at": "2024-01-17T21:00:00"}, "invalid_value"),
        ({"op": "streamed", "symbol": "AAPL", "at": "0001-01-01T00:00:00+01:00"}, "invalid_value"),
        ({"op": ["add"], "symbol": "AAPL"}, "invalid_value"),
    ],
)
def test_bad_commands_are_refused(doc: dict[str, object], reason: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_command(orjson.dumps(doc))
    assert info.value.reason == reason


def test_enabled_is_a_boolean_and_false_is_kept() -> None:
    entry = apply(None, parse_command(b'{"op": "add", "symbol": "AAPL", "enabled": false}'))
    assert entry is not None and entry.enabled is False
