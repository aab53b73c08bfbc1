"""The life cycle every service of the stack shares: reuse, start, wait, inspect, stop.

A service is ours only through its pid file (see ``procs``). ``ensure_up``
decides in this order: our process runs -> keep it; something already answers
-> reuse it; something listens without answering -> let the service adopt it
or fail; nothing -> start ours and wait until it answers a real request.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from chronox_stream.settings import Settings
from chronox_stream.stack import procs
from chronox_stream.stack.endpoints import Endpoint, port_open
from chronox_stream.stack.layout import Layout
from chronox_stream.stack.model import Origin, ServiceStatus, StackError, Stopped

Say = Callable[[str], None]
"""Receives one line of progress (never a secret)."""


class Service(ABC):
    """One server of the stack; subclasses say how to probe, start and stop it."""

    name: ClassVar[str]
    ready_timeout_s: ClassVar[float]
    stop_grace_s: ClassVar[float] = 15.0

    def __init__(self, settings: Settings, layout: Layout) -> None:
        self.settings = settings
        self.layout = layout

    @property
    @abstractmethod
    def endpoint(self) -> Endpoint:
        """Where clients reach it (from the settings)."""

    @property
    def log(self) -> Path:
        return self.layout.log(self.name)

    @property
    def pid_file(self) -> Path:
        return self.layout.pid_file(self.name)

    @abstractmethod
    async def answers(self) -> bool:
        """True when a real request with the configured credentials succeeds."""

    @abstractmethod
    async def install(self, say: Say) -> None:
        """Bring what starting needs (packages, jars); a no-op when all is there."""

    @abstractmethod
    async def start(self, say: Say) -> int:
        """Start our server detached (creating its data on first use); return its pid."""

    async def settle(self) -> None:
        """Make our running server usable (e.g. create a role); called before each wait."""
        return None

    async def finish(self, say: Say) -> None:
        """Complete our server once it answers (e.g. create a user through it)."""
        return None

    async def adopt(self, say: Say) -> None:
        """Something listens on the port but does not answer: make it answer, or raise."""
        raise StackError(
            f"{self.name}: something listens on {self.endpoint} but does not answer as "
            f"{self.name}; stop it or point the settings at another port"
        )

    def stop(self, pid: int) -> None:
        """Stop our server (SIGTERM, then SIGKILL after ``stop_grace_s``)."""
        procs.terminate(pid, grace_s=self.stop_grace_s)

    def our_pid(self) -> int | None:
        return procs.live_pid(self.pid_file, self.layout.root)

    def status(self, origin: Origin, pid: int | None, answering: bool) -> ServiceStatus:
        log = self.log if origin in ("started", "running") else None
        return ServiceStatus(self.name, str(self.endpoint), pid, origin, answering, log)


async def ensure_up(service: Service, say: Say) -> ServiceStatus:
    """Bring one service up (or keep / reuse it) and return how it runs."""
    pid = await asyncio.to_thread(service.our_pid)
    if pid is not None:
        await _wait_ready(service, pid)
        await service.finish(say)
        return service.status("running", pid, True)
    if await _foreign(service, say):
        return service.status("reused", None, True)
    if not service.endpoint.local:
        raise StackError(
            f"{service.name}: nothing answers on {service.endpoint}, and a server can only be "
            "started on this machine (127.0.0.1 / localhost)"
        )
    await service.install(say)
    if await _foreign(service, say):  # installing a Debian package may have started its server
        return service.status("reused", None, True)
    say(f"{service.name}: starting on {service.endpoint}")
    pid = await service.start(say)
    procs.write_pid(service.pid_file, pid)
    await _wait_ready(service, pid)
    await service.finish(say)
    return service.status("started", pid, True)


async def _foreign(service: Service, say: Say) -> bool:
    """True when a server we did not start answers (after adopting it if it needs that)."""
    if await service.answers():
        return True
    if await port_open(service.endpoint):
        await service.adopt(say)
        return True
    return False


async def _wait_ready(service: Service, pid: int) -> None:
    def gave_up() -> str | None:
        if procs.alive(pid):
            return None
        return f"{service.name} (pid {pid}) exited during start-up; see {service.log}"

    await service.settle()
    if not await procs.wait_until(
        service.answers, timeout_s=service.ready_timeout_s, gave_up=gave_up
    ):
        raise StackError(
            f"{service.name} (pid {pid}) did not answer on {service.endpoint} within "
            f"{service.ready_timeout_s:.0f}s; see {service.log}"
        )


async def inspect(service: Service) -> ServiceStatus:
    """How the service runs now, without changing anything."""
    pid = await asyncio.to_thread(service.our_pid)
    answering = await service.answers()
    if pid is not None:
        return service.status("running", pid, answering)
    return service.status("reused" if answering else "down", None, answering)


def ensure_down(service: Service) -> Stopped | None:
    """Stop our process of the service, if one runs; remove its pid file."""
    pid = service.our_pid()
    if pid is None:
        return None
    service.stop(pid)
    if procs.alive(pid):
        raise StackError(f"{service.name} (pid {pid}) did not stop; see {service.log}")
    service.pid_file.unlink(missing_ok=True)
    return Stopped(service.name, pid)
