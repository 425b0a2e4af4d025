"""history.png: loss and accuracy curves, train and validation."""

from __future__ import annotations

from pathlib import Path

from .files import atomic_write_bytes


def plot_history(history: dict[str, list[float]], path: Path, title: str = "") -> None:
    """Two panels (loss, accuracy); validation dashed. Written atomically."""
    from .figures import learning_curves

    atomic_write_bytes(path, learning_curves(history, title))
