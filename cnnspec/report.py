"""``cnnspec report``: one self-contained HTML page of what a run learned, plus the same figures as PNGs.

Summary, settings and the test metrics, learning curves, then by task: for classification a
confusion matrix with per-class precision/recall, a grid of random test predictions titled
"predicted (true)" (blue right, red wrong) and the worst mistakes; for segmentation the confusion
matrix over pixels and image / true mask / predicted mask overlays (the worst images too); for
regression predicted-against-true plots. Last, the first conv layer's filters and every conv
layer's feature maps for one test image.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import figures
from .api import build
from .errors import CnnspecError
from .files import atomic_write_bytes
from .metrics import MetricSums
from .runs import Run, RunPaths, load_run


@dataclass
class Report:
    """What the report shows, as data (tests check it against the model)."""

    html_path: Path
    figures: dict[str, Path] = field(default_factory=dict)
    confusion: np.ndarray | None = None
    per_class: list[dict[str, Any]] = field(default_factory=list)
    grid_indices: list[int] = field(default_factory=list)
    grid_titles: list[str] = field(default_factory=list)
    mistake_indices: list[int] = field(default_factory=list)
    feature_maps: dict[str, int] = field(default_factory=dict)
    image_index: int = 0
    task: str = "classification"
    metrics: dict[str, float] = field(default_factory=dict)  # the spec's metrics on the test split


def class_names(spec: Any, run_names: list[str] | None, dataset_names: list[str] | None, classes: int) -> list[str]:
    """The spec's names, else the run's (from its data), else the data source's, else 0..K-1."""
    for names in (getattr(spec, "class_names", None), run_names, dataset_names):
        if names and len(names) == classes:
            return list(names)
    return [str(i) for i in range(classes)]


def per_class_metrics(matrix: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for index, name in enumerate(names):
        predicted, actual = matrix[:, index].sum(), matrix[index].sum()
        hits = matrix[index, index]
        rows.append(
            {
                "class": name,
                "precision": float(hits / predicted) if predicted else 0.0,
                "recall": float(hits / actual) if actual else 0.0,
                "support": int(actual),
            }
        )
    return rows


def build_report(
    run_dir: str | Path,
    data: str | None = None,
    output: str | Path | None = None,
    image: int | None = None,
    backend: str | None = None,
    samples: int = 24,
    seed: int = 0,
) -> Report:
    """Write RUN_DIR/report.html (or ``output``) and RUN_DIR/report/*.png; return what they show."""
    paths = RunPaths(Path(run_dir))
    run = load_run(paths.root)
    spec, weights = run.spec, run.weights
    model = build(spec, backend or run.settings.backend, weights)
    dataset = run.dataset(data)
    x, y = dataset.x_test, dataset.y_test
    probs = model.predict(x)
    names = class_names(spec, run.class_names, dataset.class_names, spec.num_classes)
    image = 0 if image is None else image
    if not 0 <= image < len(x):
        raise CnnspecError(f"--image {image} is out of range: the test split has {len(x)} images (0..{len(x) - 1})")

    report = Report(html_path=Path(output) if output else paths.root / "report.html", image_index=image)
    pictures: dict[str, tuple[str, bytes]] = {}  # key -> (caption, png)

    history = json.loads(paths.history.read_text()) if paths.history.exists() else {}
    if history.get("loss"):
        pictures["learning_curves"] = ("Learning curves", figures.learning_curves(history, spec.name))

    report.task = spec.task
    sums = MetricSums(list(spec.training.metrics), spec.num_classes, lambda size: np.zeros(size))
    sums.add(np, probs, y)
    report.metrics = sums.values()
    rng = np.random.default_rng(seed)
    report.grid_indices = sorted(rng.choice(len(x), size=min(samples, len(x)), replace=False).tolist())
    TASK_PICTURES[spec.task](report, pictures, spec, x, y, probs, names, samples)

    convs = [layer for layer in spec.layers if layer.convolutional]
    if convs:
        pictures["filters"] = (
            f"Filters of {convs[0].name}",
            figures.filters_figure(weights[f"{convs[0].name}/{convs[0].filter_variable()}"], convs[0].name),
        )
        outputs = model.layer_outputs(x[image : image + 1])
        for layer, out in zip(spec.layers, outputs):
            if layer.convolutional:
                png, count = figures.feature_maps_figure(out[0], layer.name)
                report.feature_maps[layer.name] = count
                pictures[f"feature_maps_{layer.name}"] = (f"Feature maps of {layer.name} (test image {image})", png)

    folder = paths.root / "report"
    for key, (_, png) in pictures.items():
        report.figures[key] = folder / f"{key}.png"
        atomic_write_bytes(report.figures[key], png)
    atomic_write_bytes(report.html_path, _html(run, dataset.source, len(x), report, pictures).encode())
    return report


Pictures = dict[str, tuple[str, bytes]]


def _classification(report: Report, pictures: Pictures, spec, x, y, probs, names, samples) -> None:
    predicted = probs.argmax(axis=1)
    _confusion(report, pictures, y, predicted, names, "Confusion matrix")
    grid, report.grid_titles = figures.prediction_grid(
        x[report.grid_indices],
        y[report.grid_indices],
        predicted[report.grid_indices],
        names,
        "Random test images: predicted (true)",
    )
    pictures["predictions"] = ("Random test predictions", grid)
    wrong = np.flatnonzero(predicted != y)
    report.mistake_indices = wrong[np.argsort(-probs[wrong, predicted[wrong]])][:samples].tolist()
    if report.mistake_indices:
        mistakes, _ = figures.prediction_grid(
            x[report.mistake_indices],
            y[report.mistake_indices],
            predicted[report.mistake_indices],
            names,
            "Worst mistakes (most confident wrong predictions): predicted (true)",
        )
        pictures["mistakes"] = ("Worst mistakes", mistakes)


def _confusion(report: Report, pictures: Pictures, y, predicted, names, caption: str) -> None:
    report.confusion = figures.confusion(y.reshape(-1), predicted.reshape(-1), len(names))
    report.per_class = per_class_metrics(report.confusion, names)
    pictures["confusion_matrix"] = (caption, figures.confusion_figure(report.confusion, names))


def _segmentation(report: Report, pictures: Pictures, spec, x, y, probs, names, samples) -> None:
    """Pixels: a confusion matrix over all of them; overlays of random images, then of the worst ones."""
    predicted = spec.predicted_classes(probs)
    if spec.target_kind == "values":  # one probability per pixel: masks 0/1
        y = (y[..., 0] > 0.5).astype(np.int64)
        names = ["background", names[0] if names and names[0] != "0" else "foreground"]
    _confusion(report, pictures, y, predicted, names, "Confusion matrix (pixels)")
    shown = report.grid_indices[: min(samples, 8)]
    overlays, _ = figures.mask_overlays(x[shown], y[shown], predicted[shown], names, "Random test images")
    pictures["predictions"] = ("Random test images: true and predicted masks", overlays)
    right = (predicted == y).reshape(len(y), -1).mean(axis=1)
    report.mistake_indices = [int(i) for i in np.argsort(right, kind="stable")[: min(samples, 8)] if right[i] < 1]
    if report.mistake_indices:
        worst = report.mistake_indices
        overlays, _ = figures.mask_overlays(x[worst], y[worst], predicted[worst], names, "Fewest pixels right")
        pictures["mistakes"] = ("Worst test images: true and predicted masks", overlays)


def _regression(report: Report, pictures: Pictures, spec, x, y, probs, names, samples) -> None:
    if len(spec.summary().output_shape) == 1:  # one value per output: a scatter each
        plot = figures.predicted_vs_true(y, probs, names, "Test split: predicted against true")
    else:  # a map of values: each pixel a point, per channel
        channels = y.shape[-1]
        plot = figures.predicted_vs_true(
            y.reshape(-1, channels), probs.reshape(-1, channels), names, "Test split, every position"
        )
    pictures["predicted_vs_true"] = ("Predicted against true values", plot)


TASK_PICTURES = {"classification": _classification, "segmentation": _segmentation, "regression": _regression}


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f6fa}td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:1em;overflow:auto}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.muted{color:#777}"""


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(run: Run, source, n, report: Report, pictures) -> str:
    spec, settings = run.spec, run.settings
    setting_rows = [
        ["backend", settings.backend],
        ["precision", settings.precision],
        ["data", source],
        ["seed", settings.seed],
        ["epochs", settings.epochs],
        ["batch size", settings.batch_size],
        ["learning rate", settings.learning_rate],
        ["started", run.started or "?"],
        ["task", report.task],
        *[[f"test {name}", f"{value:.4f} ({n} images)"] for name, value in report.metrics.items()],
    ]
    class_rows = [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", r["support"]] for r in report.per_class]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(spec.name)}: cnnspec report</title>",
        f"<style>{CSS}</style></head><body><h1>{html.escape(spec.name)}</h1>",
        f"<p class='muted'>A cnnspec run report of {html.escape(str(report.html_path.parent))}</p>",
        "<h2>Model</h2><pre>" + html.escape(spec.summary().table()) + "</pre>",
        "<h2>Run</h2>" + _table(setting_rows, ["setting", "value"]),
    ]
    if class_rows:
        parts.append(
            "<h2>Per-class precision and recall</h2>" + _table(class_rows, ["class", "precision", "recall", "support"])
        )
    if report.task != "regression" and not report.mistake_indices:
        parts.append("<p>No mistakes on the test split.</p>")
    for key, (caption, png) in pictures.items():
        data = base64.b64encode(png).decode()
        parts.append(
            f"<h2>{html.escape(caption)}</h2><img id='{key}' alt='{html.escape(caption)}' "
            f"src='data:image/png;base64,{data}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
