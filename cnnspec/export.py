"""``cnnspec export onnx``: a run's kept weights -> a checked, verified ONNX file.

>>> report = export_onnx("runs/digits_cnn-torch", "digits.onnx")     # doctest: +SKIP
>>> report.max_abs_diff <= report.tolerance                          # doctest: +SKIP
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
    metric: str = "accuracy"  # what the next two measure: the spec's first metric (or its loss, without one)
    accuracy_fp32: float | None = None  # that metric on the test split, float32 graph (int8/fp16 exports)
    accuracy: float | None = None  # that metric on the test split, the written variant
    images_per_second_fp32: float | None = None  # batch 256, ONNX Runtime CPU
    images_per_second: float | None = None
    runners: dict[str, float] = field(default_factory=dict)  # verification: ONNX Runtime level -> max abs difference


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
    """Export a run's kept weights; with ``verify``, the file's bytes as written must give the run's backend's
    output in ONNX Runtime at every graph optimisation level, within the tolerance rule (``atol`` scaled by the
    largest value the network carries on the sample batch). ``report.runners`` has each level's difference.

    ``variant``: "fp32" (exact), "int8" (static quantization calibrated on the
    run's training images) or "fp16"; the last two report the spec's first metric on the test split
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
    model, tensors = onnx_backend.to_onnx_with_layers(
        spec, weights, opset=opset, layout=layout, class_names=run.class_names
    )
    seconds = time.perf_counter() - started
    onnx_backend.check_model(model, spec, tensors)
    report = ExportReport(output, opset, layout, seconds)
    data = model.SerializeToString()
    if verify:
        _verify(onnx_backend, data, run, layout, atol, samples, report)
    if variant != "fp32":
        model = _variant(onnx_backend, model, variant, run, layout, report)
        data = model.SerializeToString()
    atomic_write_bytes(output, data)
    report.size_bytes = len(data)
    return report


def _verify(onnx_backend, data: bytes, run: Run, layout: str, atol: float, samples: int, report: ExportReport) -> None:
    """The file's bytes, as they will be written, in ONNX Runtime at every optimisation level (each rewrites
    the graph its own way; the last is its default) against the run's training backend on a sample batch."""
    reference, spec = run.settings.backend, run.spec
    x = np.random.default_rng(0).random((samples, *spec.input_shape), dtype=np.float32)
    layers = build(spec, reference, run.weights).layer_outputs(x)  # the last one is the output
    report.reference, report.tolerance = reference, tolerance_for(x, *layers, atol=atol)
    x_file = x if layout == "nhwc" else x.transpose(0, 3, 1, 2)
    for runner in onnx_backend.ONNXRUNTIME_RUNNERS:
        try:
            got = onnx_backend.run_file(runner, data, x_file)["output"]
        except CnnspecError as err:
            raise VerificationFailed(f"{err}; nothing written") from None
        if layout == "nchw" and got.ndim == 4:  # a map comes out in the input's layout; compared channels-last
            got = got.transpose(0, 2, 3, 1)
        report.runners[runner] = max_difference(got, layers[-1])
    report.max_abs_diff = max(report.runners.values())
    worst = max(report.runners, key=report.runners.__getitem__)
    if not report.max_abs_diff <= report.tolerance:
        raise VerificationFailed(
            f"the file, run in {worst}, differs from {reference} by {report.max_abs_diff:.3g} (> {report.tolerance:.3g}) "
            "on a sample batch; nothing written. `cnnspec parity` on the spec runs the same file in every runtime "
            "and compares each layer; --no-verify writes the file anyway"
        )


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
    report.metric = next(iter(run.spec.training.metrics), "loss")  # the task's own measure
    for name, proto in (("fp32", model), (variant, converted)):
        predictor = onnx_backend.Predictor(proto, provider="cpu")
        accuracy = predictor.loss_and_metrics(x_test, dataset.y_test)[report.metric]
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
