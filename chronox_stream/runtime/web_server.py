"""The worker's web server: Faust's aiohttp driver, serving only the pages we register.

Faust mounts built-in pages next to an app's own: ``/router`` (the URL of every
worker of the group), ``/table`` (the tables' data, key by key), ``/`` (a status
index or the sensors' statistics), ``/graph``, ``/assignment/`` and
``/performance/``. They expose topology and state and none of them is needed here,
so this driver mounts none: the worker serves ``/health`` and ``/ready``
(``agents/health.py``) and answers 404 to anything else. The blueprint lists are
Faust internals (:mod:`chronox_stream.runtime.faust_shims`).
"""

from __future__ import annotations

from faust.web.drivers.aiohttp import Web


class OwnPagesWeb(Web):
    """Faust's aiohttp web server without any of Faust's built-in blueprints."""

    default_blueprints = ()
    production_blueprints = ()
    debug_blueprints = ()
    optional_blueprints = ()
