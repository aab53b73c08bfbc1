"""A worker's install and start do without the simulator: `chronox --help` and the worker's
modules import neither it nor its S3 server, and the commands that need it say which extra
to install."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from chronox_stream.cli import main
from chronox_stream.client import extras

#: What only the simulator (and its [sim] extra) or a backfill brings.
HEAVY = ("chronox_stream.sim", "moto", "boto3", "flask", "werkzeug", "pandas",
         "exchange_calendars", "pyarrow")  # fmt: skip
SIM_ONLY = ("chronox_stream.sim", "moto", "boto3", "flask", "werkzeug")
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)


def imported(args: list[str]) -> set[str]:
    """The modules a fresh interpreter imported running ``args`` (``-X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args],
                          capture_output=True, text=True, timeout=50, check=True)  # fmt: skip
    return set(IMPORTED.findall(done.stderr))


def among(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in roots))


@pytest.mark.timeout(60)
def test_help_imports_neither_the_simulator_nor_pandas() -> None:
    modules = imported(["-m", "chronox_stream", "--help"])
    assert "chronox_stream.cli" in modules, "the probe sees the command's imports"
    assert among(modules, HEAVY) == []


@pytest.mark.timeout(60)
def test_the_workers_modules_do_not_pull_the_simulator() -> None:
    probe = ("import chronox_stream.cli, chronox_stream.runtime.worker, chronox_stream.agents, "
             "chronox_stream.sources.flatfiles, chronox_stream.sources.flatfile_csv")  # fmt: skip
    modules = imported(["-c", probe])
    assert "chronox_stream.runtime.worker" in modules
    assert among(modules, SIM_ONLY) == []


@pytest.mark.parametrize("command", [["sim"], ["sim", "--port", "1"], ["demo", "--days", "1"]])
def test_without_the_extra_the_simulators_commands_say_which_to_install(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extras, "SIM_MODULES", ("moto", "chronox_no_such_module"))
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "missing: chronox_no_such_module" in line
    assert "pip install 'chronox-stream[sim]'" in line


def test_help_lists_the_simulator_and_the_stack_with_their_summaries() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert re.search(r"^  sim +The Polygon-compatible simulator", result.stdout, re.MULTILINE)
    assert re.search(r"^  stack +The local Kafka", result.stdout, re.MULTILINE)
