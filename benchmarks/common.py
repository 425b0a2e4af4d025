"""Helpers shared by the benchmark scripts: timing, data, and the machine line."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each function per round, run in turns so machine noise hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in times.items()}


def paired_ratio(times: dict[str, list[float]], name: str, baseline: str) -> float:
    """Median over rounds of (baseline time / name time): a slow spell hits both sides of each pair."""
    return statistics.median(b / t for t, b in zip(times[name], times[baseline]))


def mnist_shaped(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random MNIST-shaped data: what matters for speed is the shape, not the pixels."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n)


def write_idx_file(path: Path, array: np.ndarray) -> None:
    """uint8 array -> one file in MNIST's idx format (uncompressed, so it can be memory-mapped)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def machine() -> str:
    """The hardware every figure depends on: CPU model and its vector/bf16 flags, TensorFlow's oneDNN, GPUs."""
    from cnnspec.hardware import describe, gpu_description

    facts = describe()
    flags = ", ".join(facts["flags"]) or "none of note"
    bf16 = (
        "native, with AMX matrix units"
        if facts["bf16_matrix_units"]
        else "native (dot products only)"
        if facts["native_bf16"]
        else "emulated"
    )
    return (
        f"{facts['cpu']} ({facts['machine']}), {facts['cores']} cores; flags: {flags}; bf16: {bf16}; "
        f"TensorFlow oneDNN: {'on' if facts['tensorflow_onednn'] else 'off'}; "
        f"GPU: {gpu_description() or 'none'}; Python {platform.python_version()}"
    )


def training_table(
    framework: str, n: int, batch: int, times: dict[str, list[float]], labels: dict[str, str], spec: str = "mnist_cnn"
) -> str:
    """Markdown rows of images/s, each with its paired ratio to the hand-written fp32 baseline."""
    repeats = len(next(iter(times.values())))
    lines = [
        f"One epoch of {n:,} MNIST-shaped images, {spec}, batch {batch}, Adam; median of {repeats} epochs, "
        "timed in turns; the ratio is the median of the per-round ratios.\n",
        "| model | images/s | ratio to hand-written fp32 |",
        "|---|---|---|",
    ]
    for name, seconds in medians(times).items():
        lines.append(
            f"| {labels.get(name, name)} | {n / seconds:,.0f} | {paired_ratio(times, name, 'hand-written'):.2f} |"
        )
    return "\n".join(lines)
