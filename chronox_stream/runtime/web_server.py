"""The worker's web server: Faust's aiohttp driver, serving only the pages we register.

Faust mounts built-in pages next to an app's own: ``/router`` (the URL of every
worker of the group), ``/table`` (the tables' data, key by key), ``/`` (a status
index or the sensors' statistics), ``/graph``, ``/assignment/`` and
``/performance/``. They expose topology and state and none of them is needed here,
so this driver mounts none: the worker serves ``/health`` and ``/ready``
(``agents/health.py``) and ``/metrics`` (``agents/metrics.py``), and answers 404 to
anything else. The blueprint lists are Faust internals
(:mod:`chronox_stream.runtime.faust_shims`).

The server is on by default, on a fixed port: a second worker on the same host must be
given its own. :func:`check_port` says so in one line before the worker starts, where
Faust would stop with a traceback once the worker had joined its group.
"""

from __future__ import annotations

import errno
import socket

from faust.web.drivers.aiohttp import Web

from chronox_stream.settings import Settings


class PortTaken(OSError):
    """The web server's address is in use, by another worker most likely."""


def check_port(settings: Settings) -> None:
    """Raise :class:`PortTaken` if the web server is on and its address is taken."""
    if not settings.web_enabled:
        return
    family = socket.AF_INET6 if ":" in settings.web_bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            probe.bind((settings.web_bind, settings.web_port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortTaken(
                f"web server port {settings.web_bind}:{settings.web_port} is in use (another "
                "worker on this host?): give each worker its own CHRONOX_WEB_PORT (--web-port), "
                "or set CHRONOX_WEB_ENABLED=false"
            ) from None


class OwnPagesWeb(Web):
    """Faust's aiohttp web server without any of Faust's built-in blueprints."""

    default_blueprints = ()
    production_blueprints = ()
    debug_blueprints = ()
    optional_blueprints = ()
