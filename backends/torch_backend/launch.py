"""``cnnspec train --nproc N``: start N workers with torch's own launcher (torch.distributed elastic).

This is what ``torchrun --standalone --nproc-per-node N -m cnnspec train ...`` does: a
local rendezvous on a free port, N copies of the same command line, each told its
rank through the environment. The agent watches them: when one dies, it stops the
others at once and this call ends with one clear line (no hang, no traceback); the
run directory keeps its last finished epoch for ``--resume``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid
from typing import Any

from cnnspec.errors import RunError
from cnnspec.placement import LAUNCHER_ENV

AGENT = "torch.distributed"  # the launcher's loggers


def launch(args: list[str], nproc: int, resume_hint: str | None = None) -> None:
    """Run ``python -m cnnspec *args`` in ``nproc`` processes and wait for them; RunError when one fails."""
    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs, SignalException
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
    # the agent's warnings repeat what the one line below says (each of its modules sets its own level)
    agent_logs = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith(AGENT)]
    levels = [log.level for log in agent_logs]
    for log in agent_logs:
        log.setLevel(logging.CRITICAL)
    os.environ[LAUNCHER_ENV] = "1"  # the workers leave the Ctrl-C message to this process
    try:
        elastic_launch(config, sys.executable)("-m", "cnnspec", *args)
    except ChildFailedError as err:
        raise RunError(_failure_line(err, nproc, resume_hint)) from None
    except SignalException as err:  # Ctrl-C or a kill of this process: the agent has stopped the workers
        from cnnspec.epoch_loop import TrainingInterrupted

        raise TrainingInterrupted(
            f"interrupted ({signal.Signals(err.sigval).name}); finished epochs are saved"
            + (f". Continue with: cnnspec train --resume {resume_hint}" if resume_hint else "")
        ) from None
    finally:
        for log, level in zip(agent_logs, levels):
            log.setLevel(level)
        os.environ.pop(LAUNCHER_ENV, None)


def _culprit(err) -> tuple[int, Any]:  # noqa: ANN001 (torch's ChildFailedError, ProcessFailure)
    """The process whose failure ended the run. A process killed by a signal from outside comes first;
    one that exited with an error next (often the consequence: it lost contact); one the agent stopped
    (SIGTERM to the survivors) last; among equals, the earliest, then the lowest rank."""

    def order(item: tuple[int, Any]) -> tuple[int, float, int]:
        rank, failure = item
        kind = 2 if failure.exitcode == -signal.SIGTERM else (0 if failure.exitcode < 0 else 1)
        return kind, failure.timestamp, rank

    return min(err.failures.items(), key=order)


def _failure_line(err, nproc: int, resume_hint: str | None) -> str:  # noqa: ANN001 (torch's ChildFailedError)
    rank, failure = _culprit(err)
    if failure.exitcode < 0:
        how = f"was killed by {signal.Signals(-failure.exitcode).name}"
    else:
        how = f"exited with code {failure.exitcode}"
    resume = f"; continue with: cnnspec train --resume {resume_hint}" if resume_hint else ""
    return (
        f"training process {rank} of {nproc} (pid {failure.pid}) {how}; the others were stopped. "
        f"The run keeps its last finished epoch{resume}"
    )
