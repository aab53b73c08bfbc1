"""``python -m chronox_stream`` is the ``chronox`` command."""

from chronox_stream.cli import main

main()
