"""A worker whose web port is taken says so in one line, before it starts."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from chronox_stream.cli import main
from chronox_stream.runtime.web_server import PortTaken, check_port
from chronox_stream.settings import Settings
from tests.fixtures.sim import free_port


def test_a_taken_port_is_refused_and_a_free_or_disabled_one_passes() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortTaken, match=f"127.0.0.1:{port} is in use.*CHRONOX_WEB_PORT"):
            check_port(Settings(web_port=port))
        check_port(Settings(web_port=port, web_enabled=False))
    check_port(Settings(web_port=free_port()))


def test_chronox_worker_on_a_taken_port_exits_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["worker", "--web-port", str(port)])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert f"{port} is in use" in line
    assert "CHRONOX_WEB_PORT" in line and "--web-port" in line and "Traceback" not in line
