"""What the stack commands report: one line per service, and the error they raise.

A ``ServiceStatus`` holds addresses and pids only, never a DSN or URL, so
rendering it can never print a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Origin = Literal["started", "running", "reused", "down"]
"""``started``: ours, started by this call; ``running``: ours, already running;
``reused``: answered without us (not ours to stop); ``down``: nothing runs."""

_ORIGIN_TEXT: dict[Origin, str] = {
    "started": "started by us",
    "running": "ours, running",
    "reused": "reused (not ours)",
    "down": "not running",
}


class StackError(RuntimeError):
    """A service could not be brought up, stopped or reached; the message says which and why."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None
    origin: Origin
    answering: bool
    log: Path | None

    @property
    def ours(self) -> bool:
        return self.origin in ("started", "running")

    def render(self) -> str:
        pid = f"pid {self.pid}" if self.pid is not None else "-"
        answer = "answering" if self.answering else "NOT answering"
        return (
            f"{self.name:<9} {self.address:<22} {pid:<11} {_ORIGIN_TEXT[self.origin]:<22} {answer}"
        )


@dataclass(frozen=True)
class StackStatus:
    """The three services, and the folder holding their logs."""

    logs: Path
    services: tuple[ServiceStatus, ...]

    @property
    def ok(self) -> bool:
        """True when every service answers a real request."""
        return all(s.answering for s in self.services)

    @property
    def started_any(self) -> bool:
        return any(s.origin == "started" for s in self.services)

    def render(self) -> str:
        lines = [f"logs: {self.logs}"]
        lines += [f"  {s.render()}" for s in self.services]
        return "\n".join(lines)


@dataclass(frozen=True)
class Stopped:
    """A service ``down`` stopped, and the pid it had."""

    name: str
    pid: int
