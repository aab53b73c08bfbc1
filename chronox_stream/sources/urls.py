"""The transport rule for every URL that carries a credential, and URL origins (pure).

A Polygon key travels in the REST ``Authorization`` header and the WebSocket's
first message; S3 requests carry a signature made with the S3 keys. Over
``http://`` or ``ws://`` anyone on the path reads them, so such a URL is
refused unless it points at this machine (127.0.0.0/8, ::1, ``localhost``:
the simulator, a tunnel, a sidecar) or the operator has said, with
``CHRONOX_ALLOW_INSECURE_URLS``, that clear text is what they want.

:func:`origin` gives the scheme, host and port a browser would compare, with
the default port filled in, so that ``https://api.polygon.io`` and
``HTTPS://API.polygon.io:443/v2`` are one origin.

Errors name the setting and the host, never the whole URL: a URL may hold
user info or a query with a secret in it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

from yarl import URL

from chronox_stream.settings import Settings

#: Schemes each URL may use, and their default ports.
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: Schemes that send everything in clear text.
PLAIN_TEXT = frozenset({"http", "ws"})


class UnsafeUrl(ValueError):
    """A URL setting that must not be used as it is; the message says which and why."""


class Origin(NamedTuple):
    """Lower-case scheme and host, and the port (the scheme's default when not written)."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin(url: str | URL) -> Origin:
    """The origin of an absolute ``http(s)``/``ws(s)`` URL; ``ValueError`` for anything else.

    Parsed by yarl, as aiohttp parses what it connects to, so that the host
    checked is the host dialled (IDNA-encoded, lower case, no trailing dot).
    """
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except ValueError:
        raise ValueError("not a valid URL") from None
    scheme = parsed.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("not an http(s) or ws(s) URL")
    host = (parsed.raw_host or "").rstrip(".")
    if not host:
        raise ValueError("the URL names no host")
    port = parsed.explicit_port
    return Origin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def is_loopback(host: str) -> bool:
    """``localhost``, an address in 127.0.0.0/8, or ``::1`` (also as an IPv4-mapped address)."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True, slots=True)
class UrlRule:
    """A URL setting that carries credentials: its variable's name and the schemes it speaks."""

    setting: str
    schemes: frozenset[str]


REST_URL = UrlRule("CHRONOX_POLYGON_REST_URL", frozenset({"http", "https"}))
WS_URL = UrlRule("CHRONOX_POLYGON_WS_URL", frozenset({"ws", "wss"}))
S3_URL = UrlRule("CHRONOX_S3_ENDPOINT_URL", frozenset({"http", "https"}))


def check_transport(url: str, rule: UrlRule, *, allow_insecure: bool) -> Origin:
    """The origin of ``url`` if it may carry credentials, else :class:`UnsafeUrl`.

    The message names ``rule.setting``, never the URL. Plain text is allowed
    to a loopback host, or anywhere when ``allow_insecure``.
    """
    setting, schemes = rule.setting, rule.schemes
    try:
        where = origin(url)
    except ValueError as error:
        raise UnsafeUrl(f"{setting} is not a usable URL: {error}") from None
    if where.scheme not in schemes:
        raise UnsafeUrl(f"{setting} must use {' or '.join(sorted(schemes))}, not {where.scheme}://")
    if where.scheme in PLAIN_TEXT and not allow_insecure and not is_loopback(where.host):
        secure = "wss" if where.scheme == "ws" else "https"
        raise UnsafeUrl(
            f"{setting} sends credentials in clear text ({where.scheme}://) to {where.host!r}, "
            f"which is not this machine: use {secure}://, or set "
            "CHRONOX_ALLOW_INSECURE_URLS=true if clear text is really wanted"
        )
    return where


def check_settings(settings: Settings) -> None:
    """Refuse, before a worker starts, every credential-carrying URL it would use."""
    allow = settings.allow_insecure_urls
    for url, rule in (
        (settings.polygon_rest_url, REST_URL),
        (settings.polygon_ws_url, WS_URL),
        (settings.s3_endpoint_url if settings.flatfiles_dir is None else None, S3_URL),
    ):
        if url is not None:
            check_transport(url, rule, allow_insecure=allow)
