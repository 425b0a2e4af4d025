"""history.png: loss and accuracy curves, train and validation, and the learning rate when it changed."""

from __future__ import annotations

from pathlib import Path

from .files import atomic_write_bytes


def plot_history(history: dict[str, list[float]], path: Path, title: str = "") -> None:
    """Two panels (loss, accuracy), validation dashed, and a third (learning rate) when it varied. Written atomically."""
    from .figures import learning_curves

    atomic_write_bytes(path, learning_curves(history, title))
