"""``cnnspec parity``: every backend from one set of random weights, compared layer by layer, and the
exported file itself in every runtime.

Keras is the reference (the spec speaks Keras). Two checks, and both must pass:

- the file ``cnnspec export onnx`` writes (default opset and layout), its bytes as written, run in ONNX
  Runtime at every graph optimisation level and in OpenVINO and OpenCV where installed: its output
  against the reference's. This is what ships, and each runtime's optimiser rewrites it its own way.
- per layer, torch and an ONNX graph exposing every layer's output, against the reference. Exposing
  every layer changes what an optimiser can fuse, so this graph is the diagnosis (it names the first
  layer that differs), not the proof of the file.

The tolerance is ``cnnspec.numerics``'s rule: ``atol`` scaled by the largest magnitude the network has
carried up to that layer (for the file's output: anywhere in the network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import BackendUnavailable, CnnspecError
from .numerics import ATOL, layer_tolerances, max_difference
from .shapes import infer_shapes
from .spec import ModelSpec
from .weights import random_weights

ORDER = ("keras", "torch", "onnx")
# the random batch: N(0, 1) carries negative values and magnitudes above 1 (sign and scale bugs show);
# uniform [0, 1) is what images scaled to 0-1 look like, where the tolerance rule's bound is 1e-5 itself
INPUTS = {
    "normal": lambda rng, shape: rng.normal(0.0, 1.0, shape).astype(np.float32),
    "uniform": lambda rng, shape: rng.random(shape, dtype=np.float32),
}
EXPORTED = "The exported file (what `cnnspec export onnx` writes), run as written"


@dataclass
class ParityReport:
    spec: ModelSpec
    reference: str
    compared: list[str]
    missing: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # per layer: name, type, shape, tolerance, {backend: diff}
    atol: float = ATOL
    # the exported file, one row per runner that ran it: runner, diff (None when it failed), tolerance, error
    exported: list[dict[str, Any]] = field(default_factory=list)
    exported_missing: dict[str, str] = field(default_factory=dict)  # runner -> why it did not run here

    @property
    def worst(self) -> float:
        return max((d for row in self.rows for d in row["diff"].values()), default=0.0)

    @property
    def first_divergence(self) -> dict[str, Any] | None:
        return next((row for row in self.rows if any(d > row["tolerance"] for d in row["diff"].values())), None)

    @property
    def exported_failures(self) -> list[dict[str, Any]]:
        """The runners in which the exported file failed, or differed beyond its tolerance."""
        return [row for row in self.exported if row["diff"] is None or row["diff"] > row["tolerance"]]

    @property
    def ok(self) -> bool:
        return self.first_divergence is None and len(self.compared) >= 1 and not self.exported_failures

    def verdict(self) -> str:
        """One line: OK, or the first layer that differs, or else where the exported file differs."""
        failures, first = self.exported_failures, self.first_divergence
        if first is not None:
            also = f"; the exported file differs too, in {len(failures)} runtime settings" if failures else ""
            return f"MISMATCH: first diverging layer '{first['name']}' ({first['type']}){also}"
        if failures:
            row = failures[0]
            what = row["error"] if row["diff"] is None else f"differs by {row['diff']:.2e} > {row['tolerance']:.1e}"
            return (
                f"MISMATCH: the exported file in {row['runner']}: {what} (every layer agrees in the per-layer graph: "
                "the runtime's rewrite of the file is wrong)"
            )
        if not self.compared:
            return "nothing to compare"
        ran = f"the exported file in {len(self.exported)} runtime settings" if self.exported else "no exported file"
        return f"OK: every layer within its tolerance (max difference {self.worst:.2e}), and {ran}"

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "ok": self.ok,
            "reference": self.reference,
            "compared": self.compared,
            "missing": self.missing,
            "atol": self.atol,
            "max_abs_diff": self.worst,
            "first_divergence": first["name"] if first else None,
            "layers": [{**row, "shape": list(row["shape"])} for row in self.rows],
            "exported": self.exported,
            "exported_missing": self.exported_missing,
            "verdict": self.verdict(),
        }

    def _layer_cells(self, row: dict[str, Any], mark: str) -> list[str]:
        cells = [f"{row['diff'][b]:.2e}" + (mark if row["diff"][b] > row["tolerance"] else "") for b in self.compared]
        return [row["name"], row["type"], "x".join(map(str, row["shape"])), *cells, f"{row['tolerance']:.1e}"]

    def _file_cells(self, row: dict[str, Any], mark: str) -> list[str]:
        diff = "failed" if row["diff"] is None else f"{row['diff']:.2e}"
        return [row["runner"], diff + (mark if row in self.exported_failures else ""), f"{row['tolerance']:.1e}"]

    def _headers(self) -> tuple[list[str], list[str]]:
        layers = ["layer", "type", "output shape", *[f"{b} vs {self.reference}" for b in self.compared], "tolerance"]
        return layers, ["runtime", f"output vs {self.reference}", "tolerance"]

    def _repr_html_(self) -> str:
        """Both tables (Jupyter), what differs highlighted and marked."""
        from .display import DIVERGING, html_table

        layer_header, file_header = self._headers()
        layer_styles = [
            DIVERGING if any(d > row["tolerance"] for d in row["diff"].values()) else "" for row in self.rows
        ]
        file_styles = [DIVERGING if row in self.exported_failures else "" for row in self.exported]
        return (
            html_table(layer_header, [self._layer_cells(row, " ✗") for row in self.rows], layer_styles,
                       caption=f"Parity of {self.spec.name!r}, layer by layer")
            + html_table(file_header, [self._file_cells(row, " ✗") for row in self.exported], file_styles,
                         caption=EXPORTED)
            + f"<p>{self.verdict()}</p>"
        )  # fmt: skip

    def table(self) -> str:
        layer_header, file_header = self._headers()
        text = _columns([layer_header, *(self._layer_cells(row, " !") for row in self.rows)])
        if self.exported or self.exported_missing:
            text += ["", f"{EXPORTED}:"]
            if self.exported:
                text += _columns([file_header, *(self._file_cells(row, " !") for row in self.exported)])
            text += [f"({runner} not run: {why})" for runner, why in self.exported_missing.items()]
        return "\n".join(text)


def _columns(lines: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return text


def run_parity(
    spec: ModelSpec, seed: int = 0, batch: int = 8, atol: float = ATOL, inputs: str = "normal"
) -> ParityReport:
    """Build each available backend from the same random weights (non-trivial biases and BN statistics),
    compare every layer's output on one random batch (``inputs``: "normal" N(0, 1) or "uniform" [0, 1)), and
    run the exported file in every installed runtime."""
    from .backends import load_backend

    if inputs not in INPUTS:
        raise CnnspecError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
    backends, missing = {}, {}
    for name in ORDER:
        try:
            backends[name] = load_backend(name)
        except BackendUnavailable as err:
            missing[name] = str(err)
    if len(backends) < 2:
        raise BackendUnavailable("parity needs at least two backends; " + "; ".join(missing.values()))
    weights = random_weights(spec, seed)
    x = INPUTS[inputs](np.random.default_rng(seed), (batch, *spec.input_shape))
    outputs = {name: backend.layer_outputs(backend.build(spec, weights), x) for name, backend in backends.items()}
    reference, *compared = list(backends)
    report = ParityReport(spec, reference, compared, missing, atol=atol)
    tolerances = layer_tolerances(x, outputs[reference], atol)
    for index, (info, tolerance) in enumerate(zip(infer_shapes(spec).layers, tolerances)):
        base = outputs[reference][index]
        diffs = {name: max_difference(outputs[name][index], base) for name in compared}
        report.rows.append(
            {"name": info.name, "type": info.type, "shape": info.output_shape, "tolerance": tolerance, "diff": diffs}
        )
    if "onnx" in backends:
        _run_exported_file(report, backends["onnx"], weights, x, outputs[reference][-1], max(tolerances))
    return report


def _run_exported_file(
    report: ParityReport, onnx_backend: Any, weights: Any, x: np.ndarray, expected: np.ndarray, tolerance: float
) -> None:
    """The file export writes (default opset and layout), its bytes as written, in every installed runner."""
    data = onnx_backend.to_onnx(report.spec, weights).SerializeToString()
    for runner in onnx_backend.RUNNERS:
        why = onnx_backend.runner_missing(runner)
        if why is not None:
            report.exported_missing[runner] = why
            continue
        row: dict[str, Any] = {"runner": runner, "diff": None, "tolerance": tolerance, "error": None}
        try:
            row["diff"] = max_difference(onnx_backend.run_file(runner, data, x)["output"], expected)
        except onnx_backend.RuntimeFailed as err:
            row["error"] = str(err)
        report.exported.append(row)
