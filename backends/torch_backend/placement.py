"""Devices and processes for torch: CUDA or the CPU, and torch.distributed's process group.

Several processes are started by torch's own launcher (``cnnspec train --nproc N``
calls ``launch``; ``torchrun ... -m cnnspec train`` does the same across machines).
Each worker finds its rank in the environment the launcher sets (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/PORT) and joins the group with ``env://``: gloo on the CPU,
NCCL on CUDA. The Trainer then wraps the model in DistributedDataParallel and
synchronises batch norm (``synchronize_batch_norm``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist

from cnnspec.errors import RunError
from cnnspec.placement import Placement

# How long a collective waits for a silent peer before failing. A dead peer is noticed at once
# (its sockets close, and the launcher stops the others); this bounds a peer that hangs.
TIMEOUT_ENV, DEFAULT_TIMEOUT_S = "CNNSPEC_DIST_TIMEOUT", 600
# what a process group runs on, by device type
GROUP_BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


def cuda_missing() -> str | None:
    """Why torch cannot use CUDA here, in one phrase (None: it can)."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return (
            f"this torch ({torch.__version__}) is a CPU-only build; install a CUDA build of torch "
            "(https://pytorch.org/get-started/locally/)"
        )
    return (
        f"torch {torch.__version__} is built for CUDA {torch.version.cuda} but finds no usable GPU "
        "(no NVIDIA GPU, or its driver is missing or too old: nvidia-smi should list one)"
    )


def resolve_device(request: str, local_rank: int = 0, processes: int = 1) -> tuple[str, str]:
    """(device, reason) for ``request`` (auto, cpu, cuda, cuda:N), or a RunError in one line."""
    if request == "cpu":
        return "cpu", ""
    missing = cuda_missing()
    if request == "auto":
        if missing is not None:
            return "cpu", "auto: no usable CUDA device"
        return f"cuda:{local_rank % torch.cuda.device_count()}", "auto: CUDA is available"
    if missing is not None:
        raise RunError(f"--device {request}: {missing}")
    count = torch.cuda.device_count()
    if ":" in request:
        if processes > 1:
            raise RunError(f"--device {request} names one GPU for {processes} processes; use --device cuda")
        index = int(request.split(":")[1])
    else:
        index = local_rank
    if index >= count:
        raise RunError(f"--device {request}: this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")
    return f"cuda:{index}", ""


def launched() -> bool:
    """Whether this process was started by torch's launcher (torchrun, or ``--nproc``) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class TorchPlacement(Placement):
    group: Any = None  # the default process group once joined (None: one process)
    owns_group: bool = False  # joined here (and left in close), not by the caller's own init_process_group

    def describe(self) -> str:
        if self.processes == 1:
            return super().describe()
        backend = GROUP_BACKENDS[torch.device(self.device).type]
        return f"{self.device} x {self.processes} processes (torch.distributed, {backend})"

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        if self.processes == 1:
            return super().broadcast_bytes(data)
        # a length, then the bytes (broadcast_object_list would pickle; nothing here unpickles)
        device = torch.device(self.device)
        size = torch.tensor([len(data or b"") if self.main else 0], dtype=torch.int64, device=device)
        dist.broadcast(size, src=0)
        if self.main:
            if data is None:
                raise ValueError("rank 0 must give the bytes it broadcasts")
            buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if data else size.new_empty(0)
        else:
            buffer = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
        if int(size.item()):
            dist.broadcast(buffer, src=0)
        return data if self.main and data is not None else bytes(buffer.cpu().numpy().tobytes())

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over every process; one process: ``values`` itself."""
        if self.processes == 1:
            return values
        wire = values.to(torch.device(self.device))  # NCCL moves CUDA tensors only, gloo CPU ones
        dist.all_reduce(wire)
        return wire.to(values.device)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """A collective that fails because a peer died or hung is a RunError naming this rank."""
        try:
            yield
        except RuntimeError as err:  # DistError, or gloo's transport errors as plain RuntimeErrors
            peers = isinstance(err, dist.DistError) or any(word in str(err) for word in ("gloo", "NCCL", "Connection"))
            if self.processes == 1 or not peers:
                raise
            self.group = None  # broken: tearing it down would wait on (or abort for) the dead peer
            raise RunError(self._lost(err)) from None

    def _lost(self, err: BaseException) -> str:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"training process {self.rank} of {self.processes} lost contact with the others: {first[:300]}"

    def close(self) -> None:
        if self.owns_group and self.group is not None and dist.is_initialized():
            # nobody tears the group down while a peer still talks to it (a peer gone: nothing to wait for)
            with contextlib.suppress(RuntimeError):
                dist.barrier()
            dist.destroy_process_group()
        self.group = None


def place(device: str = "auto", nproc: int = 1) -> TorchPlacement:
    """This process's device and place in the run (joining the process group when launched as one of several).

    ``nproc`` > 1 needs the launcher: ``cnnspec train --nproc N`` or ``torchrun``; inside it the
    environment says how many processes there are.
    """
    if not launched():
        if nproc > 1:
            raise RunError(
                f"training torch on {nproc} processes needs torch's launcher: run `cnnspec train --nproc {nproc}` "
                "or `torchrun --nproc-per-node N -m cnnspec train ...` (the Python API trains in one process)"
            )
        chosen, reason = resolve_device(device)
        return TorchPlacement(device=chosen, reason=reason)
    rank, processes = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen, reason = resolve_device(device, local_rank, processes)
    kind = torch.device(chosen).type
    if kind == "cuda":
        torch.cuda.set_device(torch.device(chosen))
    joining = not dist.is_initialized()  # a script under torchrun may have joined itself: then it leaves too
    if joining:
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
        try:
            dist.init_process_group(GROUP_BACKENDS[kind], init_method="env://", timeout=timeout)
        except (RuntimeError, ValueError) as err:
            raise RunError(f"cannot join the other {processes - 1} training processes: {err}") from None
    return TorchPlacement(
        device=chosen,
        reason=reason,
        rank=rank,
        processes=processes,
        replicas=processes,
        group=dist.group.WORLD,
        owns_group=joining,
    )
