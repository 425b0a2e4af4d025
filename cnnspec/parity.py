"""``cnnspec parity``: every backend from one set of random weights, compared layer by layer.

Keras is the reference (the spec speaks Keras). The first layer whose outputs
differ beyond the tolerance is named, which is what a user needs when they
doubt a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import BackendUnavailable
from .shapes import infer_shapes
from .spec import ModelSpec
from .weights import random_weights

TOLERANCE = 1e-5
ORDER = ("keras", "torch", "onnx")


@dataclass
class ParityReport:
    spec: ModelSpec
    reference: str
    compared: list[str]
    missing: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # per layer: name, type, shape, {backend: diff}
    tolerance: float = TOLERANCE

    @property
    def worst(self) -> float:
        return max((d for row in self.rows for d in row["diff"].values()), default=0.0)

    @property
    def first_divergence(self) -> dict[str, Any] | None:
        return next((row for row in self.rows if any(d > self.tolerance for d in row["diff"].values())), None)

    @property
    def ok(self) -> bool:
        return self.first_divergence is None and len(self.compared) >= 1

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "ok": self.ok, "reference": self.reference, "compared": self.compared, "missing": self.missing,
            "tolerance": self.tolerance, "max_abs_diff": self.worst,
            "first_divergence": first["name"] if first else None,
            "layers": [{**row, "shape": list(row["shape"])} for row in self.rows],
        }  # fmt: skip

    def table(self) -> str:
        header = ["layer", "type", "output shape", *[f"{b} vs {self.reference}" for b in self.compared]]
        lines = [header]
        for row in self.rows:
            cells = [f"{row['diff'][b]:.2e}" + (" !" if row["diff"][b] > self.tolerance else "") for b in self.compared]
            lines.append([row["name"], row["type"], "x".join(map(str, row["shape"])), *cells])
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
        text.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(text)


def run_parity(spec: ModelSpec, seed: int = 0, batch: int = 8, tolerance: float = TOLERANCE) -> ParityReport:
    """Build each available backend from the same random weights (non-trivial biases and BN
    statistics) and compare every layer's output on one random batch."""
    from .backends import load_backend

    backends, missing = {}, {}
    for name in ORDER:
        try:
            backends[name] = load_backend(name)
        except BackendUnavailable as err:
            missing[name] = str(err)
    if len(backends) < 2:
        raise BackendUnavailable("parity needs at least two backends; " + "; ".join(missing.values()))
    weights = random_weights(spec, seed)
    x = np.random.default_rng(seed).normal(0.0, 1.0, (batch, *spec.input_shape)).astype(np.float32)
    outputs = {name: backend.layer_outputs(backend.build(spec, weights), x) for name, backend in backends.items()}
    reference, *compared = list(backends)
    report = ParityReport(spec, reference, compared, missing, tolerance=tolerance)
    for index, info in enumerate(infer_shapes(spec).layers):
        base = outputs[reference][index]
        diffs = {name: float(np.abs(outputs[name][index] - base).max()) if base.size else 0.0 for name in compared}
        report.rows.append({"name": info.name, "type": info.type, "shape": info.output_shape, "diff": diffs})
    return report
