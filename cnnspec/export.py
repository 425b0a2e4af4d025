"""``cnnspec export onnx``: a run's kept weights -> a checked, verified ONNX file.

>>> report = export_onnx("runs/digits_cnn-torch", "digits.onnx")     # doctest: +SKIP
>>> report.max_abs_diff < 1e-5                                      # doctest: +SKIP
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .api import load_run
from .errors import CnnspecError
from .files import atomic_write_bytes

TOLERANCE = 1e-5


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
    providers: list[str] | None = None
    size_bytes: int = 0


def export_onnx(
    run_dir: str | Path,
    output: str | Path | None = None,
    opset: int | None = None,
    layout: str = "nhwc",
    verify: bool = True,
    tolerance: float = TOLERANCE,
    samples: int = 16,
) -> ExportReport:
    """Export a run's kept weights; with ``verify``, ONNX Runtime must match the run's backend within ``tolerance``.

    The file is written only when every check passes, atomically.
    """
    from .backends import load_backend

    onnx_backend = load_backend("onnx")
    spec, run, weights = load_run(run_dir)
    opset = onnx_backend.DEFAULT_OPSET if opset is None else opset
    output = Path(output) if output is not None else Path(run_dir) / "model.onnx"
    started = time.perf_counter()
    class_names = run.get("class_names")
    model = onnx_backend.to_onnx(spec, weights, opset=opset, layout=layout, class_names=class_names)
    seconds = time.perf_counter() - started
    onnx_backend.check_model(model, spec)
    report = ExportReport(output, opset, layout, seconds)
    data = model.SerializeToString()
    if verify:
        reference = run.get("settings", {}).get("backend", "torch")
        x = np.random.default_rng(0).random((samples, *spec.input_shape), dtype=np.float32)
        expected = load_backend(reference).predict(load_backend(reference).build(spec, weights), x)
        predictor = onnx_backend.Predictor(model, provider="cpu")
        got = predictor.predict(x if layout == "nhwc" else x.transpose(0, 3, 1, 2))
        report.reference, report.providers = reference, predictor.providers
        report.max_abs_diff = float(np.abs(got - expected).max())
        if report.max_abs_diff > tolerance:
            raise VerificationFailed(
                f"ONNX Runtime and {reference} differ by {report.max_abs_diff:.3g} (> {tolerance:g}) on a sample "
                f"batch; nothing written. Run `cnnspec parity` on the spec to find the layer, or pass --no-verify"
            )
    atomic_write_bytes(output, data)
    report.size_bytes = len(data)
    return report
