"""Data-parallel training: one process against several, on the CPU, and on the GPUs where there are any.

Every row is a real ``python -m cnnspec train`` command in a fresh process, as a user would run
it, on the same spec and data: mnist_cnn, 8,192 random MNIST-shaped images written once as an
``npz:`` file, fp32 unless a row says otherwise, 3 epochs. The spec's batch (128) is the global
batch, split across the replicas. Images/s come from the run's own ``history.json`` (the median of
the epochs after the first), so the interpreter's start-up, the launcher, the rendezvous and the
first epoch's warm-up are left out of them; the command's wall time, which includes all of that,
is shown beside them. The rows run one after another, once each (not in turns): a ratio between two
rows holds only as far as the machine stayed as quiet as it was for the first.

The CPU rows split the machine's cores between the replicas, so on a CPU they show what data
parallelism costs, not what it gains. The GPU rows run only where torch (or ONNX Runtime) can use
a GPU; otherwise the fragment says in one sentence why they are missing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, median_time, mnist_shaped  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.load import dump_spec  # noqa: E402

SPEC, N_TRAIN, N_TEST, EPOCHS = "mnist_cnn", 8_192, 256, 3
INFERENCE_BATCH, INFERENCE_CALLS = 1_024, 20
# the launcher's own default (cnnspec train --nproc): the cores shared evenly between the processes
CORES = os.cpu_count() or 1


@dataclass(frozen=True)
class Run:
    """One `cnnspec train` command line, and the row of the table it fills."""

    label: str
    backend: str
    group: str  # rows of one group share a baseline: the group's first row
    nproc: int = 1
    device: str = "cpu"  # asked for explicitly, so that a GPU machine's CPU rows stay on its CPU
    precision: str = "fp32"

    @property
    def threads(self) -> int | None:
        """OMP_NUM_THREADS per torch process (what --nproc sets by default); TensorFlow sizes its own pool."""
        return max(1, CORES // self.nproc) if self.backend == "torch" else None

    def threads_text(self) -> str:
        if self.threads is None:  # one process: Keras's replicas share TensorFlow's one thread pool
            shared = f", shared by its {self.nproc} devices" if self.nproc > 1 else ""
            return f"1 process; TensorFlow's pool of {CORES} threads{shared}"
        return f"{_count(self.nproc, 'process', 'processes')} x {_count(self.threads, 'thread')}"


CPU_RUNS = [
    Run("torch, `--nproc 1`", "torch", "torch cpu"),
    Run("torch, `--nproc 2` (DDP, gloo)", "torch", "torch cpu", nproc=2),
    Run("keras, one device", "keras", "keras cpu"),
    Run("keras, `--nproc 2` (MirroredStrategy, 2 logical CPU devices)", "keras", "keras cpu", nproc=2),
]


def gpu_runs(gpus: int) -> list[Run]:
    """torch on CUDA: eager fp32 (the baseline), bf16 autocast, and one process per GPU when there are several."""
    if gpus == 0:
        return []
    on_cuda = {"backend": "torch", "group": "torch cuda", "device": "cuda"}
    runs = [
        Run("torch, `--device cuda`", **on_cuda),
        Run("torch, `--device cuda --precision bf16` (autocast)", precision="bf16", **on_cuda),
    ]
    if gpus >= 2:
        runs.append(Run(f"torch, `--device cuda --nproc {gpus}` (DDP, NCCL)", nproc=gpus, **on_cuda))
    return runs


@dataclass
class Result:
    run: Run
    wall: float  # the whole command: start-up, launcher and every epoch
    images_per_s: float | None = None
    device: str = ""
    error: str = ""  # why there is no figure


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """The spec (validation_split 0, so an epoch's seconds are training alone) and the npz data, written once."""
    spec = cnnspec.load_spec(ROOT / "specs" / f"{SPEC}.yaml").to_dict()
    spec["training"]["validation_split"] = 0
    spec_path = folder / f"{SPEC}.json"
    spec_path.write_text(dump_spec(cnnspec.load_spec(spec), "json"))
    (x_train, y_train), (x_test, y_test) = mnist_shaped(N_TRAIN), mnist_shaped(N_TEST, seed=1)
    data_path = folder / "data.npz"
    np.savez(data_path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return spec_path, data_path


def train(run: Run, spec: Path, data: Path, out: Path) -> Result:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("OMP_NUM_THREADS", None)  # each row states its own threads; an inherited setting would skew it
    if run.threads is not None:
        env["OMP_NUM_THREADS"] = str(run.threads)
    command = [
        *(sys.executable, "-m", "cnnspec", "train", str(spec), "--backend", run.backend, "--data", f"npz:{data}"),
        *("--precision", run.precision, "--epochs", str(EPOCHS), "--device", run.device, "--nproc", str(run.nproc)),
        *("--out", str(out), "--quiet"),
    ]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Result(run, wall, error=f"failed (exit {proc.returncode}): {last[:200]}")
    seconds = json.loads((out / "history.json").read_text())["seconds"]
    settings = json.loads((out / "run.json").read_text())["settings"]
    device = settings["device"] + (f" x {settings['replicas']}" if settings["replicas"] > 1 else "")
    # what the run says it ran on, checked against what was asked: a quiet fallback to the CPU,
    # or to one replica, must not pass for the configuration the row names
    if settings["replicas"] != run.nproc or not settings["device"].startswith(run.device):
        return Result(run, wall, device=device, error=f"asked for {run.device} x {run.nproc}, ran on {device}")
    return Result(run, wall, N_TRAIN / statistics.median(seconds[1:]), device)


def training_table(results: list[Result]) -> str:
    baselines: dict[str, Result] = {}
    lines = [
        "| training run | device | processes x threads | images/s | ratio | command wall time |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        base = baselines.setdefault(result.run.group, result)
        if result.images_per_s is None:
            figure, ratio = result.error, "—"
        else:
            figure = f"{result.images_per_s:,.0f}"
            ratio = f"{result.images_per_s / base.images_per_s:.2f}" if base.images_per_s else "—"
        lines.append(
            f"| {result.run.label} | {result.device or result.run.device} | {result.run.threads_text()} | "
            f"{figure} | {ratio} | {result.wall:.1f} s |"
        )
    return "\n".join(lines)


def export_onnx(run_dir: Path, path: Path) -> str:
    """`cnnspec export onnx`, as a user runs it; the error's last line ("": none)."""
    command = [sys.executable, "-m", "cnnspec", "export", "onnx", str(run_dir), "--output", str(path)]
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ}
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]


def inference_table(onnx_path: Path) -> str:
    """ONNX Runtime on the exported run: the CUDA provider against the CPU one, one batch per call."""
    x = mnist_shaped(INFERENCE_BATCH, seed=2)[0]
    rows = {}
    for provider in ("cpu", "cuda"):
        predictor = cnnspec.Predictor(onnx_path, provider=provider)
        rows[provider] = (
            predictor.providers[0],
            INFERENCE_BATCH / median_time(lambda p=predictor: p.predict(x), INFERENCE_CALLS, warmup=3),
        )
    lines = [
        f"Inference with ONNX Runtime on the exported torch run, batch {INFERENCE_BATCH:,}, "
        f"median of {INFERENCE_CALLS} calls (host-to-device copies included):\n",
        "| provider | images/s | ratio to CPU |",
        "|---|---|---|",
    ]
    for name, speed in rows.values():
        lines.append(f"| {name} | {speed:,.0f} | {speed / rows['cpu'][1]:.2f} |")
    return "\n".join(lines)


def gpu_plan() -> tuple[int, list[str]]:
    """(torch's GPU count, why each missing set of GPU rows is missing), asked before any run starts."""
    import onnxruntime as ort
    import torch

    from cnnspec.backends.onnx_backend.runtime import cuda_works
    from cnnspec.backends.torch_backend.placement import cuda_missing

    missing = cuda_missing()
    gpus = 0 if missing else torch.cuda.device_count()
    skipped = []
    if missing:
        skipped.append(f"torch rows: {missing}")
    elif gpus < 2:
        skipped.append("the torch `--nproc` row: it needs at least 2 GPUs, torch sees 1")
    if not cuda_works():
        listed = "CUDAExecutionProvider" in ort.get_available_providers()
        skipped.append(
            "ONNX Runtime rows: "
            + (
                "this onnxruntime lists the CUDA provider, but it does not load here (no usable CUDA/cuDNN)"
                if listed
                else "this onnxruntime has no CUDA provider (the CPU-only package)"
            )
        )
    return gpus, skipped


def main() -> None:
    gpus, skipped = gpu_plan()
    runs = CPU_RUNS + gpu_runs(gpus)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec, data = write_inputs(folder)
        results = [train(run, spec, data, folder / f"run{i}") for i, run in enumerate(runs)]
        inference, onnx_skipped = "", any(reason.startswith("ONNX") for reason in skipped)
        if not onnx_skipped:
            # the torch 1-process CPU run is the one exported: every machine has it
            onnx_path = folder / "model.onnx"
            error = results[0].error or export_onnx(folder / "run0", onnx_path)
            inference = f"ONNX Runtime rows: none, no model to run ({error})." if error else inference_table(onnx_path)
    print(
        f"Each row is one `cnnspec train` command in a fresh process: {SPEC}, {N_TRAIN:,} random MNIST-shaped "
        f"images (an `npz:` file), fp32 unless the row says otherwise, {EPOCHS} epochs, validation_split 0; the "
        "spec's batch of 128 is the global batch, split across the replicas. Images/s come from the median of "
        "the epochs after the first (`history.json`), so start-up, the launcher and the first epoch's warm-up are "
        "left out; the command's wall time includes them. The ratio is to the first row of the same framework "
        "and device; the device column is what `run.json` says the run used; threads are per process, on the "
        "machine named at the top.\n"
    )
    print(training_table(results))
    if inference:
        print(f"\n{inference}")
    if skipped:
        # all of them, or only some (one GPU: no --nproc row; a CPU-only onnxruntime: no inference rows)
        what = "GPU rows: skipped" if gpus == 0 and onnx_skipped else "Some GPU rows: skipped"
        print(f"\n{what} — {'; '.join(skipped)}.")
    print(
        f"\nThe CPU rows split the same {CORES} cores between the replicas, so they measure what data "
        "parallelism costs on one CPU, not a speed-up from more hardware: every step adds an all-reduce of the gradients (over gloo between "
        "torch's processes; Keras sums its replicas' gradients on one device) and the coordination of replicas "
        f"that take turns on the same cores. ({SPEC} has no batch norm, so no batch statistics are synchronised.) "
        "The same script runs as-is on a machine with several GPUs, where the torch `--nproc` row gives each "
        "process a GPU of its own."
    )


if __name__ == "__main__":
    main()
