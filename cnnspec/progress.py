"""A per-epoch progress bar and the one-line epoch summary.

The bar redraws at most ten times a second and only on a terminal; logs and CI
get just the summary lines, one per epoch, like Keras's ``verbose=2``.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

BAR_WIDTH = 24


def format_metrics(metrics: dict[str, float]) -> str:
    return " - ".join(f"{key}: {value:.4f}" for key, value in metrics.items())


class EpochProgress:
    """Call it after every batch; ``metrics`` is read only when the bar redraws."""

    def __init__(self, epoch: int, epochs: int, stream: TextIO | None = None, enabled: bool = True):
        self.label = f"Epoch {epoch}/{epochs}"
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()
        self.start = self.last_draw = time.perf_counter()

    def __call__(self, done: int, total: int, metrics: Callable[[], dict[str, float]]) -> None:
        now = time.perf_counter()
        if not self.live or (now - self.last_draw < 0.1 and done < total):
            return
        self.last_draw = now
        filled = BAR_WIDTH * done // total
        bar = "█" * filled + "·" * (BAR_WIDTH - filled)
        self.stream.write(f"\r{self.label} {bar} {done}/{total} - {format_metrics(metrics())}\x1b[K")
        self.stream.flush()

    def finish(self, metrics: dict[str, float], out: TextIO | None = None) -> str:
        """Clear the bar and print the epoch summary line; returns it."""
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        line = f"{self.label} - {time.perf_counter() - self.start:.1f}s - {format_metrics(metrics)}"
        print(line, file=out or sys.stdout, flush=True)
        return line
