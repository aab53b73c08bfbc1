"""``python -m chronox_stream.stack`` is ``chronox stack``."""

from chronox_stream.stack.cli import stack

stack(prog_name="chronox stack")
