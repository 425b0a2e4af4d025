"""A per-epoch progress bar and the one-line epoch summary.

The bar redraws at most ten times a second, on a terminal or, in a Jupyter
notebook, as one output line updated in place (IPython's display handles: no
new line per batch); logs and CI get just the summary lines, one per epoch,
like Keras's ``verbose=2``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

BAR_WIDTH = 24


def format_metrics(metrics: dict[str, float]) -> str:
    return " - ".join(f"{key}: {value:.4f}" for key, value in metrics.items())


def notebook_display() -> Any:
    """IPython's ``display`` inside a Jupyter kernel, else None; IPython is never imported here first."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):  # a terminal IPython has no kernel: the tty bar works there
        return None
    from IPython.display import display

    return display


class EpochProgress:
    """Call it after every batch; ``metrics`` is read only when the bar redraws."""

    def __init__(self, epoch: int, epochs: int, stream: TextIO | None = None, enabled: bool = True):
        self.label = f"Epoch {epoch}/{epochs}"
        self.stream = stream or sys.stderr
        self.display = notebook_display() if enabled else None
        self.handle: Any = None  # the notebook output line this epoch updates
        self.live = enabled and (self.display is not None or self.stream.isatty())
        self.start = self.last_draw = time.perf_counter()

    def __call__(self, done: int, total: int, metrics: Callable[[], dict[str, float]]) -> None:
        now = time.perf_counter()
        if not self.live or (now - self.last_draw < 0.1 and done < total):
            return
        self.last_draw = now
        filled = BAR_WIDTH * done // total
        bar = "█" * filled + "·" * (BAR_WIDTH - filled)
        self._show(f"{self.label} {bar} {done}/{total} - {format_metrics(metrics())}")

    def _show(self, line: str) -> None:
        if self.display is None:
            self.stream.write(f"\r{line}\x1b[K")
            self.stream.flush()
            return
        from IPython.display import Pretty

        if self.handle is None:
            self.handle = self.display(Pretty(line), display_id=True)
        else:
            self.handle.update(Pretty(line))

    def finish(self, metrics: dict[str, float], out: TextIO | None = None) -> str:
        """Clear the bar and print the epoch summary line (in a notebook: the bar's line becomes it); returns it."""
        line = f"{self.label} - {time.perf_counter() - self.start:.1f}s - {format_metrics(metrics)}"
        if self.display is not None and self.live:
            self._show(line)
            return line
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        print(line, file=out or sys.stdout, flush=True)
        return line
