"""``chronox stack`` end to end, on a second stack beside the main one.

The stack under test gets its own folder and free Kafka ports; PostgreSQL and
Redis are the main stack's (so they are reused, and must survive ``down``).
The CLI runs as a subprocess, exactly as a user runs it. The main stack's
Kafka jars are copied in, so no test needs the network when they exist.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chronox_stream.settings import Settings
from chronox_stream.stack import procs
from chronox_stream.stack.layout import Layout
from chronox_stream.stack.tls import KafkaAuthFiles

# One at a time (one pytest-xdist process runs both): each starts a Kafka of its own.
pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.xdist_group("second-stack")]

SERVICES = ("kafka", "postgres", "redis")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def share_jars(target: Layout) -> None:
    """Hard-link (or copy) the main stack's Kafka jars into ``target``, when it has them."""
    source = Layout.from_settings(Settings()).kafka_libs
    if not source.is_dir():
        return
    shutil.copytree(source, target.kafka_libs, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def chronox_stack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chronox_stream.stack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def line_of(service: str, output: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(service))


def processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.fixture
def second_stack(tmp_path: Path) -> Iterator[tuple[Layout, dict[str, str]]]:
    """Environment of a second stack (own folder, free Kafka ports); brought down at the end."""
    layout = Layout(tmp_path / "stack")
    share_jars(layout)
    env = {
        **os.environ,
        "CHRONOX_STACK_DIR": str(layout.root),
        "CHRONOX_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "CHRONOX_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CHRONOX_KAFKA_SASL_SSL_PORT": str(free_port()),
    }
    yield layout, env
    chronox_stack(env, "down")


def test_up_twice_status_down(second_stack: tuple[Layout, dict[str, str]]) -> None:
    layout, env = second_stack

    first = chronox_stack(env, "up")
    assert first.returncode == 0, first.stderr
    assert f"logs: {layout.logs}" in first.stdout
    assert "started by us" in line_of("kafka", first.stdout)
    reused = [s for s in ("postgres", "redis") if "reused" in line_of(s, first.stdout)]
    auth = KafkaAuthFiles(layout.kafka_auth)
    for private in (auth.keystore, auth.password):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    assert auth.read_password() not in first.stdout + first.stderr

    second = chronox_stack(env, "up")
    assert second.returncode == 0, second.stderr
    assert "already running: nothing to do" in second.stdout
    assert "started by us" not in second.stdout

    status = chronox_stack(env, "status")
    assert status.returncode == 0, status.stdout
    for service in SERVICES:
        assert "answering" in line_of(service, status.stdout)
    kafka_pid = procs.read_pid(layout.pid_file("kafka"))
    assert kafka_pid is not None and f"pid {kafka_pid}" in line_of("kafka", status.stdout)

    down = chronox_stack(env, "down")
    assert down.returncode == 0, down.stderr
    assert f"stopped kafka (pid {kafka_pid})" in down.stdout
    assert not procs.alive(kafka_pid)
    assert not layout.pid_file("kafka").exists()
    assert processes_mentioning(str(layout.root)) == []

    after = chronox_stack(env, "status")
    assert after.returncode == 1
    assert "not running" in line_of("kafka", after.stdout)
    for service in reused:
        assert "NOT answering" not in line_of(service, after.stdout), "a reused server stopped"
    assert (layout.kafka / "data" / "meta.properties").exists(), "down must keep the data"

    again = chronox_stack(env, "down")
    assert again.returncode == 0
    assert "nothing of ours was running" in again.stdout


def test_errors_never_print_a_password(second_stack: tuple[Layout, dict[str, str]]) -> None:
    _, env = second_stack
    redis = Settings().redis_url.get_secret_value()
    host_and_port = redis.split("@")[-1].split("//")[-1].split("/")[0]
    env = {**env, "CHRONOX_REDIS_URL": f"redis://:Wr0ng-S3cret@{host_and_port}/0"}

    result = chronox_stack(env, "up")

    assert result.returncode == 1
    assert "redis" in result.stderr and host_and_port in result.stderr
    assert "Wr0ng-S3cret" not in result.stdout + result.stderr
