"""``python -m chronox_stream.sim`` is ``chronox sim``."""

from chronox_stream.sim.cli import sim

sim(prog_name="chronox sim")
