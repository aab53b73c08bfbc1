"""The Redis of the stack: reuse one that answers PING, else run our own ``redis-server``.

Ours binds 127.0.0.1 at the URL's port, keeps nothing on disk (no RDB, no AOF)
and works in ``<stack_dir>/redis``. Its settings go into a config file there
(mode 0600) rather than onto the command line, so a password from the URL is
never visible in the process list.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chronox_stream.stack import apt, procs
from chronox_stream.stack.endpoints import Endpoint, mask, url_endpoint, url_password
from chronox_stream.stack.model import StackError
from chronox_stream.stack.service import Say, Service


def quoted(value: str) -> str:
    """A double-quoted redis.conf argument."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_config(*, port: int, folder: Path, password: str | None) -> str:
    lines = [
        "# Written by `chronox stack up` on every start; edits are overwritten.",
        "bind 127.0.0.1",
        f"port {port}",
        "daemonize no",
        f"dir {quoted(str(folder))}",
        'save ""',
        "appendonly no",
    ]
    if password:
        lines.append(f"requirepass {quoted(password)}")
    return "\n".join(lines) + "\n"


async def ping_error(url: str) -> str | None:
    """None when PING with the URL's credentials succeeds, else why not (password masked)."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()  # type: ignore[misc]
    except (RedisError, OSError) as exc:
        return mask(f"{type(exc).__name__}: {exc}", [url_password(url)])
    finally:
        await client.aclose()
    return None


class Redis(Service):
    name = "redis"
    ready_timeout_s = 30.0

    @property
    def url(self) -> str:
        return self.settings.redis_url.get_secret_value()

    @property
    def endpoint(self) -> Endpoint:
        return url_endpoint(self.url, 6379)

    async def answers(self) -> bool:
        return await ping_error(self.url) is None

    async def adopt(self, say: Say) -> None:
        """Something on the port refuses our PING (e.g. a password): nothing to fix from here."""
        raise StackError(
            f"redis: the server on {self.endpoint} refuses PING ({await ping_error(self.url)}); "
            "fix CHRONOX_REDIS_URL or stop that server"
        )

    async def install(self, say: Say) -> None:
        if shutil.which("redis-server") is None:
            say("redis: installing Debian's redis-server package")
        await asyncio.to_thread(self._server_command)

    async def start(self, say: Say) -> int:
        return await asyncio.to_thread(self._start)

    def _server_command(self) -> str:
        return apt.ensure_command("redis-server", "redis-server", log=self.layout.log("apt"))

    def _start(self) -> int:
        folder = self.layout.redis
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "redis.conf"
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(
            server_config(port=self.endpoint.port, folder=folder, password=url_password(self.url))
        )
        return procs.spawn_detached([self._server_command(), str(config)], cwd=folder, log=self.log)
