"""Installing a missing server with Debian's apt-get, once, quietly, one install at a time.

The stack brings its own servers onto a fresh Debian machine, so neither a
developer nor CI has to install them by hand. apt holds a lock on the package
database, so concurrent installs (the services come up in parallel) are
serialised here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

from chronox_stream.stack.model import StackError

_lock = threading.Lock()
_updated = False


def install(package: str, *, log: Path, why: str) -> None:
    """``apt-get install`` ``package`` (after one ``apt-get update``), output into ``log``.

    ``why`` names what is missing, for the error raised where apt cannot be used.
    """
    global _updated
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"{why} is missing: install the Debian package {package!r}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with _lock, log.open("ab") as out:
        steps = [] if _updated else [["apt-get", "update", "-qq"]]
        steps.append(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package])
        for argv in steps:
            if subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT).returncode:
                raise StackError(f"`{' '.join(argv)}` failed while installing {why}; see {log}")
        _updated = True


def ensure_command(command: str, package: str, *, log: Path) -> str:
    """The path of ``command``, installing ``package`` first when it is not on PATH."""
    found = shutil.which(command)
    if found is None:
        install(package, log=log, why=f"`{command}`")
        found = shutil.which(command)
    if found is None:
        raise StackError(f"`{command}` is still missing after installing {package!r}; see {log}")
    return found
