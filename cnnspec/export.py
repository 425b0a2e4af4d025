"""``cnnspec export onnx``: a run's kept weights -> a checked, verified ONNX file.

>>> report = export_onnx("runs/digits_cnn-torch", "digits.onnx")     # doctest: +SKIP
>>> report.max_abs_diff <= report.tolerance                          # doctest: +SKIP
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .api import build
from .errors import CnnspecError
from .files import atomic_write_bytes
from .numerics import ATOL, max_difference, tolerance_for
from .runs import Run, load_run


class VerificationFailed(CnnspecError):
    """ONNX Runtime and the training backend disagree beyond the tolerance."""


@dataclass
class ExportReport:
    path: Path
    opset: int
    layout: str
    export_seconds: float
    reference: str | None = None
    max_abs_diff: float | None = None
    tolerance: float | None = None  # what float32 rounding explains for this network (cnnspec.numerics)
    providers: list[str] | None = None
    size_bytes: int = 0
    variant: str = "fp32"
    accuracy_fp32: float | None = None  # test accuracy of the float32 graph (int8/fp16 exports)
    accuracy: float | None = None  # test accuracy of the written variant
    images_per_second_fp32: float | None = None  # batch 256, ONNX Runtime CPU
    images_per_second: float | None = None


def export_onnx(
    run_dir: str | Path,
    output: str | Path | None = None,
    opset: int | None = None,
    layout: str = "nhwc",
    verify: bool = True,
    atol: float = ATOL,
    samples: int = 16,
    variant: str = "fp32",
) -> ExportReport:
    """Export a run's kept weights; with ``verify``, ONNX Runtime must match the run's backend within the
    tolerance rule (``atol`` scaled by the largest value the network carries on the sample batch).

    ``variant``: "fp32" (exact), "int8" (static quantization calibrated on the
    run's training images) or "fp16"; the last two report their test accuracy
    and batch-256 speed next to the float32 graph's. The file is written only
    when every check passes, atomically.
    """
    if variant not in VARIANTS:
        raise CnnspecError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    from .backends import load_backend

    onnx_backend = load_backend("onnx")
    run = load_run(run_dir)
    spec, weights = run.spec, run.weights
    opset = onnx_backend.DEFAULT_OPSET if opset is None else opset
    output = Path(output) if output is not None else Path(run_dir) / "model.onnx"
    started = time.perf_counter()
    model = onnx_backend.to_onnx(spec, weights, opset=opset, layout=layout, class_names=run.class_names)
    seconds = time.perf_counter() - started
    onnx_backend.check_model(model, spec)
    report = ExportReport(output, opset, layout, seconds)
    data = model.SerializeToString()
    if verify:
        reference = run.settings.backend
        x = np.random.default_rng(0).random((samples, *spec.input_shape), dtype=np.float32)
        layers = build(spec, reference, weights).layer_outputs(x)  # the last one is the output
        predictor = onnx_backend.Predictor(model, provider="cpu")
        got = predictor.predict(x if layout == "nhwc" else x.transpose(0, 3, 1, 2))
        report.reference, report.providers = reference, predictor.providers
        report.max_abs_diff = max_difference(got, layers[-1])
        report.tolerance = tolerance_for(x, *layers, atol=atol)
        if not report.max_abs_diff <= report.tolerance:
            raise VerificationFailed(
                f"ONNX Runtime and {reference} differ by {report.max_abs_diff:.3g} (> {report.tolerance:.3g}) on a sample "
                f"batch; nothing written. Run `cnnspec parity` on the spec to find the layer, or pass --no-verify"
            )
    if variant != "fp32":
        model = _variant(onnx_backend, model, variant, run, layout, report)
        data = model.SerializeToString()
    atomic_write_bytes(output, data)
    report.size_bytes = len(data)
    return report


VARIANTS = ("fp32", "int8", "fp16")
CALIBRATION_IMAGES = 512


def _variant(onnx_backend, model, variant: str, run: Run, layout: str, report: ExportReport):
    """Make the int8 or fp16 model and measure it against the float32 one on the test split."""
    dataset = run.dataset()

    def laid_out(x: np.ndarray) -> np.ndarray:
        return x if layout == "nhwc" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    if variant == "int8":
        picked = np.random.default_rng(0).permutation(len(dataset.x_train))[:CALIBRATION_IMAGES]
        converted = onnx_backend.quantize_int8(model, laid_out(dataset.x_train[picked]))
    else:
        converted = onnx_backend.to_float16(model)
    x_test = laid_out(dataset.x_test)
    for name, proto in (("fp32", model), (variant, converted)):
        predictor = onnx_backend.Predictor(proto, provider="cpu")
        accuracy = float((predictor.predict(x_test).argmax(axis=1) == dataset.y_test).mean())
        speed = _images_per_second(predictor, x_test)
        if name == "fp32":
            report.accuracy_fp32, report.images_per_second_fp32 = accuracy, speed
        else:
            report.accuracy, report.images_per_second = accuracy, speed
    report.variant = variant
    return converted


def _images_per_second(predictor, x: np.ndarray, batch: int = 256, repeats: int = 20) -> float:
    sample = np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))
    predictor.predict(sample)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        predictor.predict(sample)
    return batch * repeats / (time.perf_counter() - started)
