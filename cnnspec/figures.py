"""The pictures a course would draw by hand, as PNG bytes (matplotlib, no display).

Each function returns the PNG and, where a test or the report needs it, the
numbers it drew, so what is shown can be checked rather than assumed.
"""

from __future__ import annotations

import io
import math
from typing import Any, Sequence

import numpy as np

from .metrics import METRICS

RIGHT, WRONG = "tab:blue", "tab:red"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return buffer.getvalue()


def _show_image(ax: Any, image: np.ndarray) -> None:
    """A channels-last image: gray for one channel, colour for three, first channel otherwise."""
    if image.shape[-1] == 3:
        ax.imshow(np.clip(image, 0, 1))
    else:
        ax.imshow(image[..., 0], cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def _tiles(count: int, tile: tuple[float, float]) -> tuple[Any, list[Any]]:
    """A figure of ``count`` tiles, 8 to a row; returns it and the tiles' axes (unused ones hidden)."""
    plt = _plt()
    cols = min(8, max(count, 1))
    rows = max(1, math.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(tile[0] * cols, tile[1] * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat[:count])


def learning_curves(history: dict[str, list[float]], title: str = "") -> bytes:
    """The loss and each metric per epoch, train solid and validation dashed; a last panel, log scale, for the
    learning rate when it changed during the run (a schedule or ReduceLROnPlateau)."""
    plt = _plt()
    epochs = history.get("epoch") or list(range(1, len(history.get("loss", [])) + 1))
    rates = history.get("learning_rate") or []
    metrics = [key for key in history if key in METRICS]
    panels = ["loss", *metrics] + ["learning_rate"] * (len(set(rates)) > 1)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    axes = axes[0]
    for ax, metric in zip(axes, panels):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            if history.get(key):
                ax.plot(epochs, history[key], style, markersize=3, label=key)
        ax.set(xlabel="epoch", ylabel=metric.replace("_", " "), title=metric.replace("_", " "))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    if panels[-1] == "learning_rate":
        axes[-1].set_yscale("log")  # decays and reductions are multiplicative
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """matrix[true, predicted] = count."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def confusion_figure(matrix: np.ndarray, names: Sequence[str]) -> bytes:
    plt = _plt()
    size = max(4.0, 0.5 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set(
        xticks=range(len(names)),
        yticks=range(len(names)),
        xlabel="predicted",
        ylabel="true",
        title="Confusion matrix (test split)",
    )
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(
                j, i, str(count), ha="center", va="center", color="white" if count > threshold else "black", fontsize=8
            )
    return _png(fig)


def prediction_grid(
    images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str], title: str
) -> tuple[bytes, list[str]]:
    """Titled "predicted (true)", blue when right, red when wrong; returns the titles too."""
    fig, axes = _tiles(len(images), (1.5, 1.7))
    titles = []
    for ax, image, true, pred in zip(axes, images, y_true, y_pred):
        _show_image(ax, image)
        label = f"{names[pred]} ({names[true]})"
        titles.append(label)
        ax.set_title(label, color=RIGHT if pred == true else WRONG, fontsize=9)
    fig.suptitle(title)
    return _png(fig), titles


def mask_overlays(
    images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str], title: str
) -> tuple[bytes, list[float]]:
    """Per image a row: the image, its true mask and the predicted mask over it (one colour per class,
    background clear), titled with the share of pixels predicted right; returns those shares."""
    plt = _plt()
    colours = plt.get_cmap("tab10", 10)
    shades = np.array([(0, 0, 0, 0)] + [colours(i % 10)[:3] + (0.55,) for i in range(len(names) - 1)])
    fig, axes = plt.subplots(len(images), 3, figsize=(6, 2.1 * len(images)), squeeze=False)
    shares = []
    for row, image, true, pred in zip(axes, images, y_true, y_pred):
        share = float((true == pred).mean())
        shares.append(share)
        for ax, mask, label in zip(row, (None, true, pred), ("image", "true mask", f"predicted ({share:.1%} right)")):
            _show_image(ax, image)
            if mask is not None:
                ax.imshow(shades[mask], interpolation="nearest")
            ax.set_title(label, fontsize=9, color=WRONG if mask is pred and share < 1 else "black")
    handles = [plt.Rectangle((0, 0), 1, 1, color=shades[i]) for i in range(1, len(names))]
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.legend(handles, list(names)[1:], loc="lower center", ncol=min(6, len(names) - 1), fontsize=8)
    return _png(fig), shares


def predicted_vs_true(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str], title: str) -> bytes:
    """One scatter per output (the first 8): predicted against true value, with the line they would lie on."""
    plt = _plt()
    y_true, y_pred = y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)
    count = min(8, y_true.shape[1])
    fig, axes = plt.subplots(1, count, figsize=(3.2 * count, 3.2), squeeze=False)
    for index, ax in enumerate(axes[0]):
        true, pred = y_true[:, index], y_pred[:, index]
        ax.scatter(true, pred, s=8, alpha=0.5)
        low, high = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
        ax.plot([low, high], [low, high], color="gray", linewidth=1)
        error = float(np.abs(true - pred).mean())
        ax.set(xlabel="true", ylabel="predicted", title=f"{names[index]}: MAE {error:.3f}")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def filters_figure(kernel: np.ndarray, layer_name: str) -> bytes:
    """A conv kernel (kh, kw, in, out): one tile per output filter (first input channel, or RGB)."""
    count = kernel.shape[-1]
    fig, axes = _tiles(count, (1.2, 1.2))
    for index, ax in enumerate(axes):
        tile = kernel[:, :, :3, index] if kernel.shape[2] == 3 else kernel[:, :, :1, index]
        low, high = tile.min(), tile.max()
        _show_image(ax, (tile - low) / (high - low) if high > low else np.zeros_like(tile))
    fig.suptitle(f"{layer_name}: {count} learned filters")
    return _png(fig)


def feature_maps_figure(maps: np.ndarray, layer_name: str) -> tuple[bytes, int]:
    """One conv layer's output for one image (H, W, C): one tile per channel; returns the tile count."""
    channels = maps.shape[-1]
    fig, axes = _tiles(channels, (1.2, 1.2))
    for index, ax in enumerate(axes):
        ax.imshow(maps[:, :, index], cmap="viridis")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{layer_name}: {channels} feature maps")
    return _png(fig), channels


def data_grid(images: np.ndarray, labels: np.ndarray, names: Sequence[str], title: str) -> bytes:
    fig, axes = _tiles(len(images), (1.5, 1.7))
    for ax, image, label in zip(axes, images, labels):
        _show_image(ax, image)
        ax.set_title(names[label], fontsize=9)
    fig.suptitle(title)
    return _png(fig)


def architecture_figure(report: Any) -> bytes:
    """Boxes per layer with output shapes, top to bottom, as Keras's plot_model draws them; a layer reading
    anything but the box above it (a skip connection, a merge's other inputs) gets an arrow curving round
    the right-hand side from each of its sources."""
    plt = _plt()
    boxes = [("input", "InputLayer", report.input_shape)] + [
        (layer.name, layer.keras_class, layer.output_shape) for layer in report.layers
    ]
    row = {name: index for index, (name, _, _) in enumerate(boxes)}
    skips = 0
    height = 0.9 * len(boxes) + 0.5
    longest = max(len(f"{name} ({kind})") for name, kind, _ in boxes)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.1 * longest + 2.0), height))  # wide enough for the longest label
    ax.set_xlim(0, 1.15)
    ax.set_ylim(-len(boxes) + 0.3, 1)
    ax.axis("off")
    for index, (name, kind, shape) in enumerate(boxes):
        y = -index
        ax.add_patch(plt.Rectangle((0.1, y - 0.3), 0.8, 0.6, facecolor="#e8f0fe", edgecolor="#3b6fb6"))
        ax.text(0.5, y + 0.08, f"{name} ({kind})", ha="center", va="center", fontsize=9, weight="bold")
        ax.text(0.5, y - 0.15, "(None, " + ", ".join(map(str, shape)) + ")", ha="center", va="center", fontsize=8)
        sources = report.layers[index - 1].inputs if index else ()
        for source in sources:
            if row.get(source) == index - 1:
                ax.annotate("", xy=(0.5, y + 0.3), xytext=(0.5, y + 0.7), arrowprops={"arrowstyle": "->"})
            elif source in row:  # round the right side: out of the source box, down, into this one
                lane = 0.94 + 0.04 * (skips % 4)  # side by side when several skips overlap
                skips += 1
                top = -row[source]
                ax.plot([0.9, lane, lane], [top, top, y], color="#b65b3b", linewidth=1)
                ax.annotate("", xy=(0.9, y), xytext=(lane, y), arrowprops={"arrowstyle": "->", "color": "#b65b3b"})
    ax.set_title(f'"{report.name}": {report.total_params:,} params')
    return _png(fig)
