"""history.png: loss and accuracy curves, train and validation."""

from __future__ import annotations

from pathlib import Path

from .files import atomic_write_bytes


def plot_history(history: dict[str, list[float]], path: Path, title: str = "") -> None:
    """Two panels (loss, accuracy); validation dashed. Written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    epochs = history.get("epoch") or list(range(1, len(history.get("loss", [])) + 1))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            if history.get(key):
                ax.plot(epochs, history[key], style, markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
