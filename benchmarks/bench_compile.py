"""torch.compile of the whole training step: what it costs to compile and what it gains per step (issue 26).

The first study (issue 17) compiled only the forward, in the default mode, and measured 0.46x eager. This
compiles the whole step the Trainer `cnnspec train` uses takes: forward, loss and (through AOTAutograd)
backward in one compiled function, and the Keras-exact optimizer's step in a second one (``loss.backward()``
itself is where Dynamo must break: without compiled autograd it cannot trace into it). Before timing,
``torch._dynamo.explain`` counts the graphs and graph breaks of each part; the break reasons are listed.

Modes: ``default`` and ``max-autotune-no-cudagraphs`` (on CPU it autotunes Inductor's C++ GEMM templates
against ATen's). ``reduce-overhead`` is left out: what it adds is CUDA graphs, and on a CPU Inductor skips
them ("skipping cudagraphs due to cpu device"), so it is ``default`` under another name.

mnist_cnn (28x28x1) and ResNet-20 (32x32x3), batch 128, fp32, channels-last, Adam. A cold compile (a
fresh Inductor cache, as a first `cnnspec train` pays); then steady-state steps timed in turns with the
eager Trainer, median of rounds; "graphs compiled" counts Dynamo's graphs over the whole run (a recompile
adds one). The second mode of a model may reuse kernels the first compiled in this process, so its compile
time is a lower bound. Prints markdown only; ~6 minutes on a busy 2-core machine.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

# a cold compile, as a first `cnnspec train` would pay: no kernels cached from earlier runs
os.environ["TORCHINDUCTOR_CACHE_DIR"] = CACHE = tempfile.mkdtemp(prefix="cnnspec-inductor-")
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import torch_backend  # noqa: E402

BATCH, ROUNDS, STEPS = 128, 3, 3
SPECS = {"mnist_cnn": "mnist_cnn.yaml", "ResNet-20": "resnet20_cifar.yaml"}
MODES = ("default", "max-autotune-no-cudagraphs")


def _trainer(spec_file: str) -> tuple[torch_backend.Trainer, torch.Tensor, torch.Tensor]:
    spec = cnnspec.load_spec(ROOT / "specs" / spec_file)
    spec = cnnspec.load_spec({**spec.to_dict(), "training": {"optimizer": {"type": "adam"}, "batch_size": BATCH}})
    torch.manual_seed(0)
    trainer = torch_backend.Trainer(torch_backend.build(spec), spec.training)
    height, width, channels = spec.input_shape
    x = torch.rand(BATCH, channels, height, width).contiguous(memory_format=torch.channels_last)
    return trainer, x, torch.randint(0, 10, (BATCH,))


def _loss_function(trainer: torch_backend.Trainer):
    """Forward and loss of a step, as ``Trainer._step`` computes them (one process, no regularizer)."""

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return trainer.loss(trainer.step_module(x), y).mean()

    return loss


def compiled_step(trainer: torch_backend.Trainer, mode: str):
    """One training step: compiled forward+loss(+backward, by AOTAutograd), eager ``backward()`` call,
    compiled optimizer step."""
    loss_fn = torch.compile(_loss_function(trainer), mode=mode)
    optimizer_step = torch.compile(trainer.optimizer.step, mode=mode)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        trainer.model.train()
        loss = loss_fn(x, y)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer_step()

    return step


def graph_breaks(spec_file: str) -> list[str]:
    """``torch._dynamo.explain`` of the forward+loss, the optimizer step and the whole eager step function."""
    trainer, x, y = _trainer(spec_file)
    trainer.model.train()
    rows = []

    def whole_step(x: torch.Tensor, y: torch.Tensor) -> None:
        trainer.train_step(x, y)

    parts = {
        "forward + loss": (_loss_function(trainer), (x, y)),
        "optimizer step": (trainer.optimizer.step, ()),
        "whole step (train_step, backward inside)": (whole_step, (x, y)),
    }
    for part, (fn, args) in parts.items():
        trainer.train_step(x, y)  # the optimizer's state exists, as in steady state
        torch._dynamo.reset()
        explanation = torch._dynamo.explain(fn)(*args)
        reasons = sorted({_short(reason) for reason in explanation.break_reasons})
        rows.append(
            f"| {part} | {explanation.graph_count} | {explanation.graph_break_count} | {'; '.join(reasons) or '-'} |"
        )
    torch._dynamo.reset()
    return rows


def _short(reason) -> str:  # noqa: ANN001 (torch._dynamo's GraphCompileReason)
    """A break's first line and the line of code it broke at."""
    text = reason.reason.strip()
    first = text.splitlines()[0][:90] if text else "?"
    where = reason.user_stack[-1] if reason.user_stack else None
    at = f" at `{where.line.strip()}` ({Path(where.filename).name})" if where is not None and where.line else ""
    return (first + at).replace("|", "/")


def timings(spec_file: str, mode: str) -> tuple[float, float, float, int]:
    """(compile seconds, eager step seconds, compiled step seconds, graphs Dynamo compiled), steps in turns."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager, x, y = _trainer(spec_file)
    other, _, _ = _trainer(spec_file)
    step = compiled_step(other, mode)
    start = time.perf_counter()
    step(x, y)  # compiles forward+backward and, on the first optimizer step, the update
    step(x, y)  # the optimizer's state now exists: a recompile for its second call
    compile_seconds = time.perf_counter() - start
    eager.train_step(x, y)
    runs = {"eager": lambda: eager.train_step(x, y), "compiled": lambda: step(x, y)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(STEPS):
                run()
            times[name].append((time.perf_counter() - start) / STEPS)
    graphs = int(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    return compile_seconds, statistics.median(times["eager"]), statistics.median(times["compiled"]), graphs


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("torch").setLevel(logging.ERROR)
    print(
        f"The whole training step compiled (forward + loss + backward, and the optimizer step), batch {BATCH}, "
        f"fp32, Adam; steady-state steps timed in turns with eager, median of {ROUNDS} rounds of {STEPS}. "
        "`reduce-overhead` is `default` plus CUDA graphs, which Inductor skips on a CPU: not run.\n"
    )
    print("Graph breaks (`torch._dynamo.explain`):\n")
    print("| model | part | graphs | breaks | reasons |\n|---|---|---|---|---|")
    for name, spec_file in SPECS.items():
        for row in graph_breaks(spec_file):
            print(f"| {name} {row}")
    print(
        "\n| model | mode | compile (first 2 steps) | graphs compiled | eager step | compiled step | ratio to eager |"
    )
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for name, spec_file in SPECS.items():
        for mode in MODES:
            compile_seconds, eager, compiled, graphs = timings(spec_file, mode)
            ratios.append(eager / compiled)
            print(
                f"| {name} | {mode} | {compile_seconds:.1f} s | {graphs} | {eager * 1e3:.0f} ms | "
                f"{compiled * 1e3:.0f} ms | "
                f"{eager / compiled:.2f} |"
            )
    if max(ratios) < 1.0:
        print("\ntorch.compile is slower than eager in every configuration here, so cnnspec offers no --compile.")
    else:
        print(f"\nThe best compiled configuration runs {max(ratios):.2f}x eager.")


if __name__ == "__main__":
    main()
