"""Accuracy claims hold over several seeds: the test accuracies of one spec trained once per seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cnnspec


def resized_digits_accuracies(spec: Any, backend: str, out: Path, seeds: tuple[int, ...] = (0, 1, 2)) -> list[float]:
    """``spec`` trained in ``backend`` on the built-in digits resized to its input, in fp32, once per seed;
    the test accuracy of each run (its last epoch's weights)."""
    return [
        cnnspec.train(
            spec, backend, data="digits", resize=True, seed=seed, precision="fp32", out=out / f"seed{seed}",
            verbose=False,
        ).metrics["accuracy"]
        for seed in seeds
    ]  # fmt: skip
