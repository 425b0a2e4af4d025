"""``cnnspec train --nproc N``: start N workers with torch's own launcher (torch.distributed elastic).

This is what ``torchrun --standalone --nproc-per-node N -m cnnspec train ...`` does: a
local rendezvous on a free port, N copies of the same command line, each told its
rank through the environment. The agent watches them: when one dies, it stops the
others at once and this call ends with one clear line (no hang, no traceback); the
run directory keeps its last finished epoch for ``--resume``.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid

from cnnspec.errors import RunError


def launch(args: list[str], nproc: int, resume_hint: str | None = None) -> None:
    """Run ``python -m cnnspec *args`` in ``nproc`` processes and wait for them; RunError when one fails."""
    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # One thread each unless told otherwise (what torchrun sets): N processes share the cores.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"cnnspec-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # a free port, as torchrun --standalone
        max_restarts=0,  # a failed worker ends the run; --resume continues it
        monitor_interval=0.5,
        logs_specs=DefaultLogsSpecs(),
    )
    try:
        elastic_launch(config, sys.executable)("-m", "cnnspec", *args)
    except ChildFailedError as err:
        raise RunError(_failure_line(err, nproc, resume_hint)) from None


def _failure_line(err, nproc: int, resume_hint: str | None) -> str:  # noqa: ANN001 (torch's ChildFailedError)
    rank, failure = min(err.failures.items())  # the first rank that failed
    if failure.exitcode < 0:
        how = f"was killed by {signal.Signals(-failure.exitcode).name}"
    else:
        how = f"exited with code {failure.exitcode}"
    resume = f"; continue with: cnnspec train --resume {resume_hint}" if resume_hint else ""
    return (
        f"training process {rank} of {nproc} (pid {failure.pid}) {how}; the others were stopped. "
        f"The run keeps its last finished epoch{resume}"
    )
