"""Addresses of the three services, parsed from the settings, and a cheap TCP probe.

Only ``host:port`` ever leaves this module: DSNs and URLs carry passwords, so
they are parsed here and never printed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from chronox_stream.stack.model import StackError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MASK = "***"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        """True when a server for it can be started on this machine (loopback only)."""
        return self.host in LOOPBACK


@dataclass(frozen=True)
class Credentials:
    """User, password and database of a PostgreSQL DSN (the password never goes to output)."""

    user: str
    password: str | None
    database: str


def kafka_endpoint(bootstrap: str) -> Endpoint:
    """The first ``host:port`` of a bootstrap list: the broker the stack runs or reuses."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise StackError(f"kafka_bootstrap must be host:port, got {first!r}")
    return Endpoint(host.strip("[]"), int(port))


def url_endpoint(url: str, default_port: int) -> Endpoint:
    """``host:port`` of a DSN or URL (``127.0.0.1`` and ``default_port`` when absent)."""
    parts = urlsplit(url)
    return Endpoint(parts.hostname or "127.0.0.1", parts.port or default_port)


def url_password(url: str) -> str | None:
    password = urlsplit(url).password
    return unquote(password) if password else None


def dsn_credentials(dsn: str) -> Credentials:
    """The role and database a PostgreSQL DSN connects as (database defaults to the user)."""
    parts = urlsplit(dsn)
    user = unquote(parts.username or "postgres")
    database = unquote(parts.path.lstrip("/")) or user
    return Credentials(user, url_password(dsn), database)


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by ``***`` (for third-party messages)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


async def port_open(endpoint: Endpoint, timeout_s: float = 1.0) -> bool:
    """True when something accepts a TCP connection on the endpoint."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port), timeout_s
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True
