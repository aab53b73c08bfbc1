"""Processes the stack starts: detached spawning, pid files, ownership, stopping, waiting.

A server is started through ``sh ... &`` so that it is never a child of the
calling Python process: it outlives the CLI, and a test calling the Python API
gets no "subprocess still running" warning. Its pid goes into a pid file; a pid
counts as ours only while that process is alive and works inside our stack
folder (its ``/proc/<pid>/cwd``), which guards against a reused pid. Nothing is
ever found or stopped by process name.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chronox_stream.stack.model import StackError

_LAUNCH = 'log=$1; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!'


def spawn_detached(argv: list[str], *, cwd: Path, log: Path) -> int:
    """Start ``argv`` in a new session, output appended to ``log``; return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    launched = subprocess.run(
        ["sh", "-c", _LAUNCH, "sh", str(log), *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    return int(launched.stdout.strip())


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def works_in(pid: int, folder: Path) -> bool:
    """True when the process's working directory is ``folder`` or below it."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd == folder or folder in cwd.parents


def read_pid(pid_file: Path) -> int | None:
    """The pid on the first line of ``pid_file`` (PostgreSQL's has more lines), if any."""
    try:
        return int(pid_file.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def live_pid(pid_file: Path, folder: Path) -> int | None:
    """The pid from ``pid_file`` if that process is alive and ours; else drop the stale file."""
    pid = read_pid(pid_file)
    if pid is not None and alive(pid) and works_in(pid, folder):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def wait_dead(pid: int, timeout_s: float) -> bool:
    """Poll until the process is gone; True if it went within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate(pid: int, *, grace_s: float) -> None:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL and wait for the process to go."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_dead(pid, grace_s):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_dead(pid, 10.0)


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float,
    gave_up: Callable[[], str | None],
    interval_s: float = 0.25,
) -> bool:
    """Poll ``check`` until it is true (True) or ``timeout_s`` passed (False).

    ``gave_up`` is asked after each failed check: a message from it (e.g. "the
    process exited") ends the wait at once with a ``StackError``.
    """
    deadline = time.monotonic() + timeout_s
    while not await check():
        reason = gave_up()
        if reason is not None:
            raise StackError(reason)
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval_s)
    return True
