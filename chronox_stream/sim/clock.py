"""The simulator's clock: sim-now runs ``speed`` sim seconds per real second from a start.

Speed 0 freezes the clock, which makes a test's view of the market fully
deterministic; ``set`` re-bases it (new instant and/or speed) from the
current moment, so sim time never jumps unless asked to.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chronox_stream.sim.sessions import NS_PER_S


class SimClock:
    def __init__(
        self, start_ns: int, speed: float, *, real: Callable[[], float] = time.monotonic
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._real = real
        self._anchor_ns = start_ns
        self._anchor_real = real()
        self.speed = speed

    def now_ns(self) -> int:
        return self._anchor_ns + int((self._real() - self._anchor_real) * self.speed * NS_PER_S)

    def set(self, *, now_ns: int | None = None, speed: float | None = None) -> None:
        """Move to ``now_ns`` and/or change the speed; sim time continues from there."""
        if speed is not None and speed < 0:
            raise ValueError("speed must be >= 0")
        anchor = self.now_ns() if now_ns is None else now_ns
        self._anchor_ns, self._anchor_real = anchor, self._real()
        if speed is not None:
            self.speed = speed
