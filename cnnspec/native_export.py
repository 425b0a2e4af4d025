"""``cnnspec export keras|torch``: a run as a file its framework loads on its own.

Like ``export onnx``, each file is built from the run's kept weights, loaded back
the way a user would load it, compared with the run's backend on a sample batch
(the tolerance rule of ``cnnspec.numerics``), and only then moved into place
atomically. Layers that act in training only (random augmentation) are left out:
these are inference files.

- Keras: a ``.keras`` file for ``keras.models.load_model``. Min and sum pooling
  have no Keras class; a spec that uses them is saved with cnnspec's Keras layers
  and loading it needs ``import cnnspec.backends.keras_backend`` first (the
  report's ``needs`` says so). Every other layer is Keras's own.
- torch: a ``torch.export`` program (``.pt2``) for ``torch.export.load``: plain
  ATen operations, no cnnspec code, a dynamic batch size. Its input is
  channels-last (N, H, W, C) like the spec's, or NCHW with ``layout="nchw"``.

>>> export_torch("runs/digits_cnn-torch", "digits.pt2").max_abs_diff    # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import CnnspecError
from .numerics import ATOL, max_difference, tolerance_for
from .runs import Run, load_run
from .spec import ModelSpec

SAMPLES = 16


class NativeExportFailed(CnnspecError):
    """The saved file does not load, or computes something other than the run's backend."""


@dataclass
class NativeExportReport:
    path: Path
    framework: str
    reference: str
    max_abs_diff: float
    tolerance: float
    export_seconds: float
    size_bytes: int = 0
    left_out: list[str] = field(default_factory=list)  # training-only layers not in the file
    needs: str | None = None  # what loading the file needs beyond the framework itself


def inference_spec(spec: ModelSpec) -> ModelSpec:
    """``spec`` without its training-only layers (they are the identity at inference; none has weights)."""
    kept = [layer for layer in spec.layers if not layer.training_only]
    if len(kept) == len(spec.layers):
        return spec
    from .load import load_spec

    document = spec.to_dict()
    document["layers"] = [layer.model_dump(mode="json") for layer in kept]
    return load_spec(document)


def export_keras(run_dir: str | Path, output: str | Path, atol: float = ATOL) -> NativeExportReport:
    """The run as a ``.keras`` file, verified by loading it back in Keras's safe mode."""
    output = Path(output)
    if output.suffix != ".keras":
        raise CnnspecError(f"{output}: a Keras file must end in .keras")
    from .backends import load_backend

    keras_backend = load_backend("keras")
    import keras

    custom: list[str] = []  # cnnspec's own Keras classes in the file: loading needs cnnspec's Keras module

    def save(spec: ModelSpec, run: Run, path: Path) -> None:
        model = keras_backend.build(spec, run.weights)
        custom.extend(
            sorted({type(layer).__name__ for layer in model.layers if type(layer).__module__.startswith("cnnspec")})
        )
        model.save(path)

    def load(path: Path) -> Callable[[np.ndarray], np.ndarray]:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
        return lambda x: np.asarray(model(x, training=False))

    report = _export(run_dir, output, "keras", save, load, atol, None)
    if custom:
        report.needs = (
            f"its {', '.join(custom)} layers are cnnspec's: import cnnspec.backends.keras_backend before loading"
        )
    return report


def export_torch(
    run_dir: str | Path, output: str | Path, layout: str = "nhwc", atol: float = ATOL
) -> NativeExportReport:
    """The run as a ``torch.export`` program (``.pt2``), verified by ``torch.export.load``."""
    if layout not in ("nhwc", "nchw"):
        raise CnnspecError(f"layout must be nhwc or nchw, got {layout!r}")
    from .backends import load_backend

    torch_backend = load_backend("torch")
    import torch

    def save(spec: ModelSpec, run: Run, path: Path) -> None:
        # standard layout: a file should not depend on cnnspec's channels-last choice (and torch.export's saver
        # warns about the kernels' strided views otherwise)
        model = torch_backend.build(spec, run.weights).eval().use_memory_format(torch.contiguous_format)
        module = _channels_last_input(model) if layout == "nhwc" else model
        example = torch.zeros((2, *spec.input_shape))
        if layout == "nchw":
            example = example.permute(0, 3, 1, 2).contiguous()
        batch = torch.export.Dim("batch", min=1)
        program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))

    def load(path: Path) -> Callable[[np.ndarray], np.ndarray]:
        module = torch.export.load(str(path)).module()

        def run(x: np.ndarray) -> np.ndarray:
            tensor = torch.from_numpy(x if layout == "nhwc" else np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            with torch.no_grad():
                out = module(tensor).numpy()
            return out.transpose(0, 2, 3, 1) if out.ndim == 4 and layout == "nchw" else out  # compared channels-last

        return run

    return _export(run_dir, Path(output), "torch", save, load, atol, None)


def _channels_last_input(model: Any) -> Any:
    """``model`` between permutes: (N, H, W, C) in, like the spec and Keras (the compiled model takes NCHW),
    and an image-shaped output (a per-pixel map) out channels-last too."""
    import torch

    class ChannelsLast(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.inner(x.permute(0, 3, 1, 2))
            return out.permute(0, 2, 3, 1) if out.dim() == 4 else out

    return ChannelsLast(model)


def _export(
    run_dir: str | Path,
    output: Path,
    framework: str,
    save: Callable[[ModelSpec, Run, Path], None],
    load: Callable[[Path], Callable[[np.ndarray], np.ndarray]],
    atol: float,
    needs: str | None,
) -> NativeExportReport:
    from .api import build

    run = load_run(run_dir)
    spec = inference_spec(run.spec)
    left_out = [layer.name for layer in run.spec.layers if layer.training_only]
    output.parent.mkdir(parents=True, exist_ok=True)
    # a temporary name in the same folder (os.replace is atomic there) with the suffix the framework wants
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=output.suffix, dir=output.parent)
    os.close(handle)
    path = Path(temporary)
    try:
        started = time.perf_counter()
        save(spec, run, path)
        seconds = time.perf_counter() - started
        x = np.random.default_rng(0).random((SAMPLES, *spec.input_shape), dtype=np.float32)
        layers = build(run.spec, run.settings.backend, run.weights).layer_outputs(x)
        try:
            got = load(path)(x)
        except Exception as err:  # whatever the framework raises, the file is not usable
            raise NativeExportFailed(f"the {framework} file did not load back: {err}; nothing written") from None
        difference, tolerance = max_difference(got, layers[-1]), tolerance_for(x, *layers, atol=atol)
        if not difference <= tolerance:
            raise NativeExportFailed(
                f"the {framework} file and {run.settings.backend} differ by {difference:.3g} (> {tolerance:.3g}) on "
                "a sample batch; nothing written"
            )
        size = path.stat().st_size
        os.replace(path, output)
    finally:
        path.unlink(missing_ok=True)
    reference = run.settings.backend
    return NativeExportReport(output, framework, reference, difference, tolerance, seconds, size, left_out, needs)
