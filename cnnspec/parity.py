"""``cnnspec parity``: every backend from one set of random weights, compared layer by layer.

Keras is the reference (the spec speaks Keras). The first layer whose outputs
differ beyond the tolerance is named, which is what a user needs when they
doubt a backend. The tolerance is ``cnnspec.numerics``'s rule: ``atol`` scaled
by the largest magnitude the network has carried up to that layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import BackendUnavailable
from .numerics import ATOL, layer_tolerances, max_difference
from .shapes import infer_shapes
from .spec import ModelSpec
from .weights import random_weights

ORDER = ("keras", "torch", "onnx")


@dataclass
class ParityReport:
    spec: ModelSpec
    reference: str
    compared: list[str]
    missing: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # per layer: name, type, shape, tolerance, {backend: diff}
    atol: float = ATOL

    @property
    def worst(self) -> float:
        return max((d for row in self.rows for d in row["diff"].values()), default=0.0)

    @property
    def first_divergence(self) -> dict[str, Any] | None:
        return next((row for row in self.rows if any(d > row["tolerance"] for d in row["diff"].values())), None)

    @property
    def ok(self) -> bool:
        return self.first_divergence is None and len(self.compared) >= 1

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
        }

    def _repr_html_(self) -> str:
        """The per-layer table (Jupyter), layers beyond their tolerance highlighted and marked."""
        from .display import DIVERGING, html_table

        header = ["layer", "type", "output shape", *[f"{b} vs {self.reference}" for b in self.compared], "tolerance"]
        rows, styles = [], []
        for row in self.rows:
            diverges = any(row["diff"][b] > row["tolerance"] for b in self.compared)
            cells = [
                f"{row['diff'][b]:.2e}" + (" ✗" if row["diff"][b] > row["tolerance"] else "") for b in self.compared
            ]
            rows.append([row["name"], row["type"], "x".join(map(str, row["shape"])), *cells, f"{row['tolerance']:.1e}"])
            styles.append(DIVERGING if diverges else "")
        first = self.first_divergence
        verdict = (
            f"OK: every layer within its tolerance (max difference {self.worst:.2e})"
            if self.ok
            else f"MISMATCH: first diverging layer {first['name']!r}"
            if first
            else "nothing to compare"
        )
        return html_table(header, rows, styles, caption=f"Parity of {self.spec.name!r}") + f"<p>{verdict}</p>"

    def table(self) -> str:
        header = ["layer", "type", "output shape", *[f"{b} vs {self.reference}" for b in self.compared], "tolerance"]
        lines = [header]
        for row in self.rows:
            cells = [
                f"{row['diff'][b]:.2e}" + (" !" if row["diff"][b] > row["tolerance"] else "") for b in self.compared
            ]
            lines.append(
                [row["name"], row["type"], "x".join(map(str, row["shape"])), *cells, f"{row['tolerance']:.1e}"]
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
        text.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(text)


def run_parity(spec: ModelSpec, seed: int = 0, batch: int = 8, atol: float = ATOL) -> ParityReport:
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
    report = ParityReport(spec, reference, compared, missing, atol=atol)
    tolerances = layer_tolerances(x, outputs[reference], atol)
    for index, (info, tolerance) in enumerate(zip(infer_shapes(spec).layers, tolerances)):
        base = outputs[reference][index]
        diffs = {name: max_difference(outputs[name][index], base) for name in compared}
        report.rows.append(
            {"name": info.name, "type": info.type, "shape": info.output_shape, "tolerance": tolerance, "diff": diffs}
        )
    return report
