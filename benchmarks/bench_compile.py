"""torch.compile on the compiled model: what it costs to compile and what it gains per step.

The issue asks for an opt-in `--compile` only if it measurably helps; this is
the measurement. mnist_cnn, batch 128, Adam, fp32, the Trainer `cnnspec train`
uses, with the model's forward compiled by TorchInductor; steady-state steps
timed in turns with the eager model, median of rounds.
"""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# a cold compile, as a first `cnnspec train` would pay: no kernels cached from earlier runs
os.environ["TORCHINDUCTOR_CACHE_DIR"] = CACHE = tempfile.mkdtemp(prefix="cnnspec-inductor-")
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import torch_backend  # noqa: E402

BATCH, ROUNDS, STEPS = 128, 5, 10


def main() -> None:
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    x = torch.rand(BATCH, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,))
    trainers = {name: torch_backend.Trainer(torch_backend.build(spec), spec.training) for name in ("eager", "compiled")}
    compiled_model = trainers["compiled"].model
    compiled_model.forward_logits = torch.compile(compiled_model.forward_logits)
    start = time.perf_counter()
    trainers["compiled"].train_step(x, y)  # compiles forward and backward
    compile_seconds = time.perf_counter() - start
    trainers["eager"].train_step(x, y)
    steps: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(ROUNDS):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(STEPS):
                trainer.train_step(x, y)
            steps[name].append((time.perf_counter() - start) / STEPS)
    eager, compiled = (statistics.median(steps[name]) for name in ("eager", "compiled"))
    print(f"mnist_cnn, batch {BATCH}, fp32, one training step (median of {ROUNDS} rounds of {STEPS}):\n")
    print("| forward | first step (compiles) | step | images/s | ratio to eager |\n|---|---|---|---|---|")
    print(f"| eager (cnnspec default) | | {eager * 1e3:.1f} ms | {BATCH / eager:,.0f} | 1.00 |")
    print(
        f"| torch.compile | {compile_seconds:.1f} s | {compiled * 1e3:.1f} ms | {BATCH / compiled:,.0f} | "
        f"{eager / compiled:.2f} |"
    )
    verdict = "slower" if compiled > eager else "faster"
    print(f"\ntorch.compile is {verdict} here{', so cnnspec offers no --compile' if verdict == 'slower' else ''}.")


if __name__ == "__main__":
    main()
