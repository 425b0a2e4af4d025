"""ONNX Runtime sessions: provider choice, a predictor, and evaluation on a data source."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from cnnspec.errors import CnnspecError, ModelFileError
from cnnspec.load import load_spec
from cnnspec.metrics import MetricSums
from cnnspec.numpy_losses import loss_values
from cnnspec.spec import ModelSpec

from .sessions import open_session

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


# ONNX Runtime's graph optimisation levels, lowest first; ORT_ENABLE_ALL is its default and what Predictor
# uses. Each level rewrites the graph further (fusions, layout changes), so a file is verified at every one.
OPTIMIZATION_LEVELS = {
    name: getattr(ort.GraphOptimizationLevel, f"ORT_{name.upper()}")
    for name in ("disable_all", "enable_basic", "enable_extended", "enable_layout", "enable_all")
    if hasattr(ort.GraphOptimizationLevel, f"ORT_{name.upper()}")  # ENABLE_LAYOUT is new in 1.2x
}
DEFAULT_LEVEL = "enable_all"


def quiet_options(threads: int | None = None, level: str = DEFAULT_LEVEL) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = OPTIMIZATION_LEVELS[level]
    options.log_severity_level = 3  # errors only
    if threads:
        options.intra_op_num_threads = threads
    return options


@functools.cache
def cuda_works() -> bool:
    """Whether the CUDA provider really loads here (onnxruntime-gpu lists it even without CUDA).

    Probed once with a one-node model and ONNX Runtime's logger silenced, so a
    machine without CUDA sees no loud failure message.
    """
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    ort.set_default_logger_severity(4)
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)  # the CUDA loader writes to stderr itself, past the logger
            session = ort.InferenceSession(
                model.SerializeToString(), quiet_options(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
            )
        return "CUDAExecutionProvider" in session.get_providers()
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        ort.set_default_logger_severity(2)


def choose_providers(requested: str | None = None) -> list[str]:
    """``None``: CUDA when it really loads, else CPU. Or force "cpu", "cuda", "tensorrt"."""
    if requested is None:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda_works() else ["CPUExecutionProvider"]
    name = PROVIDERS.get(requested.lower(), requested)
    if name not in ort.get_available_providers():
        raise CnnspecError(
            f"provider {requested!r} is not available; available: {', '.join(ort.get_available_providers())}"
        )
    if name == "CUDAExecutionProvider" and not cuda_works():
        raise CnnspecError("the CUDA provider cannot load here (no usable CUDA/cuDNN); use --provider cpu")
    return [name] if name == "CPUExecutionProvider" else [name, "CPUExecutionProvider"]


def read_model(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    try:
        return onnx.load(str(path))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except Exception as err:  # noqa: BLE001 - protobuf raises several kinds for bad bytes
        raise ModelFileError(
            f"{path}: not a readable ONNX model (corrupt or truncated?): {type(err).__name__}"
        ) from None


def _model_and_bytes(model: str | Path | bytes | onnx.ModelProto) -> tuple[onnx.ModelProto, bytes]:
    if isinstance(model, bytes):
        return onnx.load_from_string(model), model
    proto = model if isinstance(model, onnx.ModelProto) else read_model(model)
    return proto, proto.SerializeToString()


class Predictor:
    """An ONNX Runtime session for an exported spec.

    >>> predictor = Predictor("model.onnx")           # doctest: +SKIP
    >>> predictor.predict(images_nhwc).shape          # doctest: +SKIP
    (n, 10)

    ``runtime``: "onnxruntime" (the default; ``provider`` picks its device), "openvino" (CPU, float32), or
    "auto" (the faster of the two at batch 1, timed on this machine; ``runtime_reason`` says why).
    """

    def __init__(
        self,
        model: str | Path | bytes | onnx.ModelProto,
        provider: str | None = None,
        threads: int | None = None,
        level: str = DEFAULT_LEVEL,
        runtime: str = "onnxruntime",
    ):
        proto, data = _model_and_bytes(model)  # bytes given are what the session runs, exactly
        self.origin = "model" if isinstance(model, (bytes, onnx.ModelProto)) else str(model)
        props = {p.key: p.value for p in proto.metadata_props}
        if "spec" not in props:
            raise ModelFileError(f"{self.origin}: not exported by cnnspec (no spec in its metadata)")
        self.spec: ModelSpec = load_spec(json.loads(props["spec"]))
        self.layout = props.get("input_layout", "nhwc")
        height, width, channels = self.spec.input_shape
        self.image_shape = (height, width, channels) if self.layout == "nhwc" else (channels, height, width)
        self.class_names: list[str] | None = json.loads(props["class_names"]) if "class_names" in props else None
        if provider is not None and runtime == "openvino":
            raise CnnspecError("--provider chooses ONNX Runtime's device; the openvino runtime runs on the CPU")

        def open_onnxruntime() -> ort.InferenceSession:
            return ort.InferenceSession(data, quiet_options(threads, level), providers=choose_providers(provider))

        example = np.zeros((1, *self.image_shape), np.float32)
        try:
            self.session, self.runtime, self.runtime_reason = open_session(
                runtime, open_onnxruntime, data, threads, example
            )
        except CnnspecError:
            raise
        except Exception as err:  # noqa: BLE001
            raise ModelFileError(f"{self.origin}: {runtime} cannot load it: {str(err)[:300]}") from None
        self.outputs = [o.name for o in self.session.get_outputs()]
        self._output = ["output"]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def _input(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.image_shape:
            if x.shape != self.image_shape:
                raise CnnspecError(
                    f"input has shape {x.shape[1:]} per image, the model takes {self.image_shape} ({self.layout})"
                )
            x = x[None]
        return x if x.flags.c_contiguous else np.ascontiguousarray(x)

    def run(self, x: Any, outputs: list[str] | None = None) -> list[np.ndarray]:
        return self.session.run(outputs or ["output"], {"input": self._input(x)})

    def predict(self, x: Any, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities (the spec's output) for a batch or a single image."""
        x = self._input(x)
        if len(x) <= batch_size:  # the common case: one call, nothing to stitch
            return self.session.run(self._output, {"input": x})[0]
        return np.concatenate(
            [self.session.run(self._output, {"input": x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)]
        )

    def top_k(self, x: Any, k: int = 3) -> list[list[tuple[int, str, float]]]:
        """Per image: the k best (class index, class name, probability)."""
        probs = self.predict(x)
        if self.spec.training.loss.takes_logits:  # the model's output is logits: probabilities are their softmax
            shifted = np.exp(probs - probs.max(axis=1, keepdims=True))
            probs = shifted / shifted.sum(axis=1, keepdims=True)
        names = self.class_names or [str(i) for i in range(probs.shape[1])]
        best = np.argsort(-probs, axis=1)[:, :k]
        return [[(int(c), names[c], float(p[c])) for c in row] for row, p in zip(best, probs)]

    def channels_last(self, y: np.ndarray) -> np.ndarray:
        """An output as Keras lays it out: a map of an ``nchw`` file has its channels moved last."""
        return y.transpose(0, 2, 3, 1) if self.layout == "nchw" and y.ndim == 4 else y

    def loss_and_metrics(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> dict[str, float]:
        """Keras's loss and the spec's metrics (``cnnspec.metrics``). A cross-entropy reads the "logits"
        output when the file has one (or the output is logits: ``from_logits``), as Keras does, else clipped
        probabilities. Regularization penalties are not part of it (an inference file has no notion of them)."""
        loss = self.spec.training.loss
        has_logits = "logits" in self.outputs and loss.reads_logits
        sums = MetricSums(list(self.spec.training.metrics), self.spec.num_classes, lambda size: np.zeros(size))
        total = 0.0
        x = self._input(x)
        for i in range(0, len(x), batch_size):
            output, *rest = self.run(x[i : i + batch_size], ["output", "logits"] if has_logits else ["output"])
            output = self.channels_last(output)
            scores = self.channels_last(rest[0]) if has_logits else output
            targets = y[i : i + batch_size]
            values = loss_values(loss, scores, targets, has_logits or loss.takes_logits)
            total += float(values.mean()) * len(targets)  # a per-batch loss (Dice) weighs its rows
            sums.add(np, output, targets)
        return {**sums.values(), "loss": total / len(x)}


def evaluate_file(
    path: str | Path,
    data: str = "digits",
    resize: bool = False,
    provider: str | None = None,
    runtime: str = "onnxruntime",
):
    from cnnspec.data import fit_to_spec, load_data

    predictor = Predictor(path, provider, runtime=runtime)
    spec = predictor.spec
    dataset = fit_to_spec(load_data(data), spec, resize=resize)
    x = dataset.x_test if predictor.layout == "nhwc" else dataset.x_test.transpose(0, 3, 1, 2)
    return {**predictor.loss_and_metrics(x, dataset.y_test), "n": int(len(dataset.x_test))}
