"""``python -m cnnspec`` is the ``cnnspec`` command."""

from .cli import run

run()
