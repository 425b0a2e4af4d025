"""Where a run computes: its device, and this process's place among the run's workers.

A backend's ``place(device, nproc)`` answers with a ``Placement`` (or its own subclass):
the device it resolved (``auto`` becomes CUDA/GPU when the framework can really use one,
else the CPU), and, for data-parallel training, how many model replicas share each
global batch. The training driver reads only the names here, so it never branches on
the framework:

- ``main``: this process writes the run directory, progress and checkpoints (rank 0);
- ``broadcast_bytes``: rank 0's bytes (the resumed state) to every process;
- ``running``: a failure of another process (a peer that died) becomes one RunError line;
- ``close``: leave the process group.

Torch runs one process per replica (torch.distributed; ``rank`` and ``processes``);
Keras runs one process with ``replicas`` devices (``tf.distribute.MirroredStrategy``).
This module imports no framework.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Iterator

from .errors import RunError

# set for the workers `cnnspec train --nproc` starts: the launcher reports a Ctrl-C for them
LAUNCHER_ENV = "CNNSPEC_LAUNCHER"
LAUNCHED_ENV = "TORCHELASTIC_RUN_ID"  # set in every worker torch's launcher (torchrun, --nproc) starts
DEVICE_REQUESTS = ("auto", "cpu", "cuda", "cuda:N")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_request(request: str) -> str:
    """``request`` normalised (lower case), or a RunError naming the accepted forms."""
    text = str(request).strip().lower()
    if not _DEVICE.match(text):
        raise RunError(f"--device must be one of {', '.join(DEVICE_REQUESTS)}, got {request!r}")
    return text


def check_nproc(nproc: int) -> int:
    if int(nproc) < 1:
        raise RunError(f"--nproc must be at least 1, got {nproc}")
    return int(nproc)


@dataclass
class Placement:
    """One process on one device: what every run is unless it says otherwise."""

    device: str = "cpu"  # what computes: "cpu", "cuda:0" (torch), "gpu:0" (TensorFlow's name)
    reason: str = ""  # why, when it was chosen for the user ("auto: no CUDA device")
    rank: int = 0  # this process among the run's processes (torch.distributed)
    processes: int = 1
    replicas: int = 1  # model copies that share each global batch (processes x local devices)

    @property
    def main(self) -> bool:
        """Whether this process writes the run directory, the progress and the checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.replicas > 1

    def describe(self) -> str:
        """One phrase for the training banner: ``cpu``, ``cuda:0``, ``cpu x 2 processes (gloo)``."""
        return self.device + (f" ({self.reason})" if self.reason else "")

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        """Rank 0's ``data`` on every process (one process: ``data`` itself)."""
        if data is None:
            raise ValueError("rank 0 must give the bytes it broadcasts")
        return data

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around training: a lost peer ends this process with a RunError, not a traceback (one process: no peers)."""
        yield

    def close(self) -> None:
        """Leave the process group (nothing to leave for one process)."""
