"""The Python API beyond the spec language: build, evaluate, predict.

>>> import cnnspec
>>> model = cnnspec.build("specs/digits_cnn.yaml", backend="torch")     # doctest: +SKIP
>>> cnnspec.evaluate("runs/digits_cnn-torch")                          # doctest: +SKIP
{'accuracy': 0.98..., 'loss': 0.05..., 'n': 360}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .data import fit_to_spec, load_data
from .errors import RunError
from .load import load_spec
from .runs import RunPaths, read_json
from .spec import ModelSpec
from .weights import Weights, load_weights


def build(spec: str | Path | dict | ModelSpec, backend: str = "torch", weights: Weights | str | Path | None = None) -> Any:
    """The framework model of ``spec`` (torch ``nn.Module`` or ``keras.Model``).

    ``weights``: canonical arrays or a ``.safetensors`` path; default: seeded Keras-style initial weights.
    """
    from .backends import load_backend

    spec = load_spec(spec)
    if isinstance(weights, (str, Path)):
        weights = load_weights(weights, spec)
    return load_backend(backend).build(spec, weights)


def load_run(run_dir: str | Path) -> tuple[ModelSpec, dict[str, Any], Weights]:
    """(spec, run.json, kept weights) of a run directory, each checked."""
    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise RunError(f"{paths.root}: no such run directory")
    spec = load_spec(read_json(paths.spec, "spec"))
    run = read_json(paths.run, "run settings") if paths.run.exists() else {"settings": {}}
    if not paths.weights.exists():
        raise RunError(f"{paths.root}: no weights.safetensors yet (no epoch has finished)")
    return spec, run, load_weights(paths.weights, spec)


def evaluate(
    target: str | Path, data: str | None = None, backend: str | None = None, resize: bool | None = None
) -> dict[str, Any]:
    """Accuracy and loss on the test split: ``{"accuracy", "loss", "n"}``.

    ``target`` is a run directory (evaluated with ``backend``, default the one that
    trained it) or an ``.onnx`` file (ONNX Runtime). ``data`` defaults to the run's source.
    """
    from .backends import load_backend

    target = Path(target)
    if target.suffix == ".onnx":
        onnx_backend = load_backend("onnx")
        return onnx_backend.evaluate_file(target, data or "digits", resize=bool(resize))
    spec, run, weights = load_run(target)
    settings = run.get("settings", {})
    framework = load_backend(backend or settings.get("backend", "torch"))
    source = data or settings.get("data", "digits")
    dataset = fit_to_spec(load_data(source), spec.input_shape, spec.num_classes,
                          settings.get("resize", False) if resize is None else resize)  # fmt: skip
    model = framework.build(spec, weights)
    trainer = framework.Trainer(model, spec.training)
    metrics = trainer.evaluate(trainer.prepare(dataset.x_test, dataset.y_test))
    return {"accuracy": metrics["accuracy"], "loss": metrics["loss"], "n": int(len(dataset.x_test))}


def predict(model: Any, x: np.ndarray, backend: str = "torch") -> np.ndarray:
    """The spec's output (class probabilities) for channels-last images (N, H, W, C)."""
    from .backends import load_backend

    return load_backend(backend).predict(model, x)
