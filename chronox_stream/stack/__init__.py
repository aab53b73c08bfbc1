"""The local stack (``chronox stack``): Kafka, PostgreSQL and Redis on 127.0.0.1.

``up`` starts what does not answer yet and reuses what does, ``down`` stops
only what ``up`` started, ``status`` reports without changing anything. All
files (jars, data, logs, pid files) live under ``settings.stack_dir``.
"""

from chronox_stream.stack.core import down, status, status_async, up, up_async
from chronox_stream.stack.model import ServiceStatus, StackError, StackStatus, Stopped

__all__ = [
    "ServiceStatus",
    "StackError",
    "StackStatus",
    "Stopped",
    "down",
    "status",
    "status_async",
    "up",
    "up_async",
]
