"""A private PostgreSQL and Redis for outage drills: stop one for a while, start it again.

The outage tests and ``bench/chaos.py`` stop a database under running workers.
They must never touch the shared stack, so they run a pair of their own: the
stack's own services (:mod:`.postgres`, :mod:`.redis`), configured with free
loopback ports and a folder of their own, started, stopped and found again only
through that folder's pid files. Kafka stays the caller's.

Stopping keeps the data. PostgreSQL stops with ``pg_ctl stop -m fast`` and
restarts on the same cluster. Redis (which the stack runs without persistence)
is stopped with ``SHUTDOWN SAVE``: it writes a snapshot into its folder as it
exits and loads it when it starts again, so an outage removes nothing from it.
``freeze`` suspends a server instead (SIGSTOP): a server that accepts
connections but never answers, as a black-holed host does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chronox_stream.settings import Settings
from chronox_stream.stack import procs
from chronox_stream.stack.layout import Layout
from chronox_stream.stack.model import StackError
from chronox_stream.stack.postgres import Postgres
from chronox_stream.stack.redis import Redis
from chronox_stream.stack.service import Service, ensure_down, ensure_up

ServiceName = Literal["postgres", "redis"]
SERVICES: tuple[ServiceName, ...] = ("postgres", "redis")


def free_port() -> int:
    """A TCP port nothing listens on at the moment (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateStack:
    """PostgreSQL and Redis on free loopback ports below ``root``; ``settings`` points at them.

    ``settings`` is ``base`` with ``postgres_dsn``, ``redis_url`` and ``stack_dir``
    replaced; everything else (Kafka above all) is the caller's.
    """

    def __init__(self, base: Settings, root: Path) -> None:
        self.root = root
        self.settings = base.with_overrides(
            stack_dir=root,
            postgres_dsn=f"postgresql://chronox:chronox@127.0.0.1:{free_port()}/chronox",
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
        )
        layout = Layout.from_settings(self.settings)
        layout.create()
        self._services: dict[ServiceName, Service] = {
            "postgres": Postgres(self.settings, layout),
            "redis": Redis(self.settings, layout),
        }

    @classmethod
    async def create(cls, base: Settings) -> PrivateStack:
        """Both servers started in a new folder under the system's temporary folder.

        The folder is made enterable by others: our PostgreSQL runs as the
        ``postgres`` OS user when we are root.
        """
        root = Path(tempfile.mkdtemp(prefix="chronox-private-"))
        root.chmod(0o755)
        stack = cls(base, root)
        try:
            await stack.start(*SERVICES)
        except BaseException:
            await stack.close()
            raise
        return stack

    def pid(self, name: ServiceName) -> int | None:
        """The pid of our running server, if it runs."""
        return self._services[name].our_pid()

    async def start(self, *names: ServiceName) -> None:
        """Start (or thaw) the named servers (a no-op for one that runs); return once they
        answer."""
        for name in names:
            self._signal(name, signal.SIGCONT)
        await asyncio.gather(*(ensure_up(self._services[n], _quiet) for n in names))

    def freeze(self, name: ServiceName) -> None:
        """Suspend one server and every process it forked (SIGSTOP): a black-holed server.

        Connections stay open and connecting still succeeds at the TCP level, but
        nothing answers until ``start`` thaws it: only timeouts notice.
        """
        self._signal(name, signal.SIGSTOP)

    async def stop(self, name: ServiceName) -> None:
        """Stop one server, keeping its data for the next ``start``."""
        if name == "redis":
            await self._save_and_shut_redis()
        await asyncio.to_thread(ensure_down, self._services[name])

    async def close(self) -> None:
        """Stop both servers and remove the folder with their data."""
        try:
            for name in SERVICES:
                self._signal(name, signal.SIGCONT)
                await asyncio.to_thread(ensure_down, self._services[name])
        finally:
            await asyncio.to_thread(shutil.rmtree, self.root, True)

    def _signal(self, name: ServiceName, sig: signal.Signals) -> None:
        """Send ``sig`` to our server of ``name`` and its descendants (PostgreSQL's backends)."""
        pid = self.pid(name)
        if pid is None:
            return
        for member in _tree(pid):
            try:
                os.kill(member, sig)
            except ProcessLookupError:
                pass

    async def _save_and_shut_redis(self) -> None:
        pid = self.pid("redis")
        if pid is None:
            return
        client = aioredis.Redis.from_url(
            self.settings.redis_url.get_secret_value(), socket_connect_timeout=2, socket_timeout=30
        )
        try:
            await client.shutdown(save=True)
        except RedisError as exc:
            raise StackError(f"redis (pid {pid}) refused SHUTDOWN SAVE: {exc}") from None
        finally:
            await client.aclose()
        if not await asyncio.to_thread(procs.wait_dead, pid, 30.0):
            raise StackError(f"redis (pid {pid}) did not exit after SHUTDOWN SAVE")


def _tree(root: int) -> list[int]:
    """``root`` and every live descendant of it, from ``/proc``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _quiet(line: str) -> None:
    """Progress lines of the private servers go nowhere."""
