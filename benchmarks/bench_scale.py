"""How training cost grows: throughput against batch size, and cost against model size.

cnnspec's torch backend, fp32 (the default), MNIST-shaped random data, Adam,
through the same Trainer `cnnspec train` uses; every figure a median of rounds
timed in turns. Model sizes: mnist_mlp, mnist_cnn, and mnist_cnn with every
conv and dense layer twice as wide. Work is counted as forward multiply-adds
x 2 (FLOPs) per image; training does about three times that (forward, and the
two halves of the backward pass), so "training GFLOP/s" is 3 x FLOPs x images/s:
when it stays flat, cost grows in proportion to work.
"""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_torch import cnnspec_epoch  # noqa: E402
from common import ROOT, interleaved, mnist_shaped  # noqa: E402

import cnnspec  # noqa: E402

N, ROUNDS = 5_120, 5
BATCHES = [16, 32, 64, 128, 256, 512]


def forward_flops(spec) -> int:
    """2 x multiply-adds per image of the layers with kernels (the rest is a rounding error).

    A kernel's every weight meets one input per output position: conv (kh, kw, in, out) at
    H x W positions, dense (in, out) at one.
    """
    total = 0
    for layer, shape in zip(spec.layers, spec.summary().layers):
        kernels = [size for name, size in layer.variables(shape.input_shape).items() if name.endswith("kernel")]
        positions = math.prod(shape.output_shape[:-1])
        total += sum(2 * math.prod(size) * positions for size in kernels)
    return total


def wider(spec, factor: int = 2):
    """The same network with every conv and dense layer (but the classifier) ``factor`` times as wide."""
    document = spec.to_dict()
    document["name"] = f"{spec.name}_wide"
    for layer in document["layers"][:-1]:
        for key in ("filters", "units"):
            if key in layer:
                layer[key] *= factor
    return cnnspec.load_spec(document)


def batch_table(spec, x, y) -> str:
    times = interleaved({b: cnnspec_epoch(spec, x, y, b) for b in BATCHES}, ROUNDS)
    lines = [
        f"Training throughput against batch size ({spec.name}, fp32, {N:,} images per measure):\n",
        "| batch size | images/s | vs batch 128 |",
        "|---|---|---|",
    ]
    base = statistics.median(times[128])
    for batch, seconds in times.items():
        median = statistics.median(seconds)
        lines.append(f"| {batch} | {N / median:,.0f} | {base / median:.2f}x |")
    return "\n".join(lines)


def model_table(specs, x, y) -> str:
    times = interleaved({s.name: cnnspec_epoch(s, x, y, 128) for s in specs}, ROUNDS)
    lines = [
        "\nCost against model size (batch 128, fp32):\n",
        "| model | parameters | forward MFLOPs / image | images/s | µs / image | training GFLOP/s achieved |",
        "|---|---|---|---|---|---|",
    ]
    for spec in specs:
        seconds = statistics.median(times[spec.name]) / N
        mflops = forward_flops(spec) / 1e6
        lines.append(
            f"| {spec.name} | {spec.summary().total_params:,} | {mflops:.2f} | {1 / seconds:,.0f} | "
            f"{seconds * 1e6:.0f} | {3 * mflops / seconds / 1e3:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    x, y = mnist_shaped(N)
    cnn = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    mlp = cnnspec.load_spec(ROOT / "specs" / "mnist_mlp.yaml")
    print(batch_table(cnn, x, y))
    print(model_table([mlp, cnn, wider(cnn)], x, y))


if __name__ == "__main__":
    main()
