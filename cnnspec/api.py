"""The Python API beyond the spec language: build, evaluate, predict.

>>> import cnnspec
>>> model = cnnspec.build("specs/digits_cnn.yaml", backend="torch")     # doctest: +SKIP
>>> model.predict(images_nhwc).shape                                   # doctest: +SKIP
(n, 10)
>>> cnnspec.evaluate("runs/digits_cnn-torch")                          # doctest: +SKIP
{'accuracy': 0.98..., 'loss': 0.05..., 'n': 360}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, ModelError
from .load import load_spec
from .model import Model, backend_of
from .placement import check_device_request
from .runs import Run, RunSettings, load_run
from .spec import ModelSpec
from .weights import Weights, load_weights

__all__ = ["Model", "Run", "RunSettings", "build", "evaluate", "load_run", "predict"]


def build(
    spec: str | Path | dict | ModelSpec, backend: str = "torch", weights: Weights | str | Path | None = None
) -> Model:
    """``spec`` compiled for ``backend`` ("torch", "keras" or "onnx"), as a ``Model`` that knows its backend
    (``model.native`` is the torch ``nn.Module`` / ``keras.Model`` itself).

    ``weights``: canonical arrays or a ``.safetensors`` path; default: seeded Keras-style initial weights.
    """
    from .backends import inference_backend

    spec = load_spec(spec)
    if isinstance(weights, (str, Path)):
        weights = load_weights(weights, spec)
    return Model(spec, backend, inference_backend(backend).build(spec, weights))


def evaluate(
    target: str | Path,
    data: Any = None,
    backend: str | None = None,
    resize: bool | None = None,
    device: str = "auto",
    runtime: str = "onnxruntime",
) -> dict[str, Any]:
    """The spec's metrics (``training.metrics``: accuracy, mean_io_u, mae ...) and loss on the test split:
    ``{"accuracy": ..., "loss": ..., "n": ...}``.

    ``target`` is a run directory (evaluated with ``backend``, default the one that
    trained it) or an ``.onnx`` file (ONNX Runtime). ``data`` defaults to the run's source;
    arrays work too, as ``train`` takes them (their test pair is what is evaluated).
    ``device``: auto, cpu, cuda or cuda:N for a run (an ``.onnx`` file picks ONNX Runtime's provider).
    ``runtime``: for an ``.onnx`` file, onnxruntime, openvino or auto (the faster here at batch 1).
    """
    from .backends import load_backend, training_backend

    target = Path(target)
    if target.suffix == ".onnx":
        onnx_backend = load_backend("onnx")
        if data is not None and not isinstance(data, str):
            raise DataError("evaluating an .onnx file takes a data source name; for arrays use cnnspec.Predictor")
        return onnx_backend.evaluate_file(target, data or "digits", resize=bool(resize), runtime=runtime)
    run = load_run(target)
    framework = training_backend(backend or run.settings.backend)  # its Trainer computes Keras's loss
    dataset = run.dataset(data, resize)
    placement = framework.place(check_device_request(device))
    model = framework.build(run.spec, run.weights, placement=placement)
    trainer = framework.Trainer(model, run.spec.training, placement=placement)
    metrics = trainer.evaluate(trainer.prepare(dataset.x_test, dataset.y_test))
    return {**metrics, "n": int(len(dataset.x_test))}


def predict(model: Model | Any, x: np.ndarray, backend: str | None = None, batch_size: int = 1024) -> np.ndarray:
    """The spec's output (class probabilities) for channels-last images (N, H, W, C).

    ``model`` is a ``Model`` (from ``build``, or ``train(...).model``); it runs with its own
    backend, so ``backend`` is left out (naming another one is a ``ModelError``).
    The older form, a bare framework model and its backend, still works:
    ``predict(native, x, backend="torch")``; without ``backend`` a bare torch, Keras or
    ONNX-backend model is recognised by its type, and anything else is a ``ModelError``.
    """
    if isinstance(model, Model):
        if backend is not None and backend != model.backend:
            raise ModelError(
                f"this model was built for the {model.backend} backend, not {backend!r}; "
                "leave out backend= (a cnnspec Model knows its own)"
            )
        return model.predict(x, batch_size=batch_size)
    from .backends import inference_backend

    chosen = backend or backend_of(model)
    if chosen is None:
        raise ModelError(
            f"cannot tell which backend runs a {type(model).__name__!r} object: pass a Model from "
            "cnnspec.build (or cnnspec.train(...).model), or name the backend of a bare framework "
            "model, e.g. backend='torch'"
        )
    return inference_backend(chosen).predict(model, x, batch_size=batch_size)
