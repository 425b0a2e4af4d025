"""The ``cnnspec`` command line: parse, call the library, print.

Thin on purpose: every command calls the Python API, and every framework import happens inside the
command that needs it, so ``cnnspec validate`` and ``cnnspec --help`` never load torch, TensorFlow or ONNX.
Exit codes: 0 ok, 1 invalid input (a ``CnnspecError``), 2 usage. The app and what its commands share are in
``shared.py``; the commands register themselves on it, by subject: a spec, a run, a model file.
"""

from __future__ import annotations

import os
import sys

# isort: off
from .shared import _worker_rank, app
from . import spec_commands, run_commands, file_commands  # noqa: F401  (their order is --help's)
# isort: on

__all__ = ["app", "run"]


def run() -> None:
    """Console-script entry point."""
    # The command line uses no pydantic plugins, and looking them up reads every installed package's
    # metadata: about 20 ms of a `cnnspec validate` meant to answer at once. A user's own setting wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if _worker_rank() is None:
        app()
        return
    # One of torch's launched workers: end without interpreter finalisation. There, gloo's threads
    # can still release work holding Python objects and abort the process ("terminate called without
    # an active exception", pytorch/pytorch#179291) after the run has finished and been written.
    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
