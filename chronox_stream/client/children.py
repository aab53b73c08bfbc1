"""Child processes for the demo and the tests: start with an environment, wait, stop.

A child runs in its own session with its output in a log file, so it can be
stopped as a group (SIGTERM, then SIGKILL after a grace period) without
touching anything it did not start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


class ChildFailed(RuntimeError):
    """A child exited or did not get ready in time; the message ends with its log's tail."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, name: str, args: list[str], *, env: dict[str, str], log_path: Path) -> Child:
        """Run ``python -m <args>`` with ``env`` layered over this process's environment."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *args],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return cls(name, process, log_path)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for_log(self, needle: str, *, timeout_s: float) -> None:
        """Block until ``needle`` appears in the child's log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log_path.exists() and needle in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise ChildFailed(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        raise ChildFailed(f"{self.name} not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the child's whole process group: a crash, as tests of recovery need."""
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def pause(self) -> None:
        """SIGSTOP the group: a process that stalls (a long GC, a swapped-out host) while the
        rest of the world goes on, as tests of zombie members need."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the group after :meth:`pause`."""
        self._signal_group(signal.SIGCONT)

    def stop(self, *, grace_s: float = 15.0) -> int:
        """SIGTERM the group, wait up to ``grace_s``, then SIGKILL; return the exit code."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
