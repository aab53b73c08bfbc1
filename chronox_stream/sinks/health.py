"""Whether each sink can write now: what ``/ready`` reports per sink.

A sink that cannot write keeps retrying (its offsets stay put, nothing is lost), and the
worker is not ready meanwhile: a dashboard or an orchestrator should see which store is
behind, not only that the process lives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class SinkHealth:
    """The latest write outcome of each sink: ``ok`` or ``down: <error type>``."""

    def __init__(self) -> None:
        self._down: dict[str, str] = {}

    async def watch(self, name: str, write: Callable[[], Awaitable[T]]) -> T:
        """Run one ``write`` of sink ``name`` and record whether it failed (then re-raise)."""
        try:
            result = await write()
        except Exception as error:
            self._down[name] = f"down: {type(error).__name__}"
            raise
        self._down.pop(name, None)
        return result

    def state(self, name: str) -> str:
        return self._down.get(name, "ok")
