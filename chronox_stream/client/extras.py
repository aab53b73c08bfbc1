"""Optional parts of the install: what the ``[sim]`` extra brings, and how its absence shows.

A worker needs neither the simulator nor its S3 server (moto with flask, and boto3 to fill
its bucket): they are the ``[sim]`` extra, so a worker's install leaves them out. The
commands that run the simulator (``chronox sim``, ``chronox demo``) check for them before
they start and refuse with one line naming the extra, rather than failing half-way with an
``ImportError``. The check only looks the modules up; it imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.util import find_spec

#: Top-level modules the simulator imports that only the ``[sim]`` extra installs.
SIM_MODULES = ("moto", "boto3", "flask", "flask_cors", "werkzeug")

SIM_INSTALL = "pip install 'chronox-stream[sim]'"


def missing(modules: Iterable[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here."""
    return [name for name in modules if find_spec(name) is None]


def sim_extra_error(command: str) -> str | None:
    """The one-line refusal of ``command`` when the ``[sim]`` extra is not installed, else None."""
    absent = missing(SIM_MODULES)
    if not absent:
        return None
    return (
        f"`chronox {command}` needs the simulator's extra, which is not installed "
        f"(missing: {', '.join(absent)}): {SIM_INSTALL}"
    )
