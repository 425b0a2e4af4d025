"""The parity bounds actually applied, and the differences measured, per layer type and input kind.

Not a timing: the README's "the same outputs, to 1e-5" rests on the tolerance rule of
cnnspec/numerics.py (1e-5 absolute while every value carried so far is at most 1, else 1e-5 times the
largest), so which bound a test exercises depends on its inputs. For every case of every registered
layer type (tests/layers/cases.py, which tests/parity/test_forward_parity.py runs with both kinds of
input), this runs the three backends from one set of random weights, as the test does, and prints the
bound applied at the layer and the largest difference measured, for inputs N(0, 1) and [0, 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not installed: run from the checkout

import numpy as np  # noqa: E402

from cnnspec.backends import load_backend  # noqa: E402
from cnnspec.numerics import layer_tolerances, max_difference  # noqa: E402
from cnnspec.parity import INPUTS  # noqa: E402
from cnnspec.weights import random_weights  # noqa: E402
from tests.layers.cases import LAYER_CASES, case_index, case_spec  # noqa: E402

BATCH = 4


def measure(kind: str) -> dict[str, tuple[float, float, float]]:
    """Per layer type: (smallest bound, largest bound, largest difference of torch or ONNX vs Keras) over its cases."""
    backends = {name: load_backend(name) for name in ("keras", "torch", "onnx")}
    rows = {}
    for layer_type, cases in LAYER_CASES.items():
        bounds, diffs = [], []
        for layer, shape in cases:
            spec = case_spec(layer, shape)
            weights = random_weights(spec, 0)
            x = INPUTS[kind](np.random.default_rng(0), (BATCH, *spec.input_shape))
            outputs = {name: b.layer_outputs(b.build(spec, weights), x) for name, b in backends.items()}
            index = case_index(shape)
            bounds.append(layer_tolerances(x, outputs["keras"])[index])
            diffs += [max_difference(outputs[name][index], outputs["keras"][index]) for name in ("torch", "onnx")]
        rows[layer_type] = (min(bounds), max(bounds), max(diffs))
    return rows


def main() -> None:
    measured = {kind: measure(kind) for kind in ("normal", "uniform")}
    print(
        f"Every case of every layer type (tests/layers/cases.py), batch of {BATCH}, random weights with non-zero biases "
        "and batch-norm statistics; the bound is the tolerance rule's at that layer (1e-5 while every value so far "
        "is at most 1, else 1e-5 times the largest), the difference the largest of torch and ONNX Runtime against "
        "Keras.\n"
    )
    print("| layer type | bound, inputs N(0, 1) | difference | bound, inputs [0, 1) | difference |")
    print("|---|---|---|---|---|")
    for layer_type in LAYER_CASES:
        cells = []
        for kind in ("normal", "uniform"):
            low, high, diff = measured[kind][layer_type]
            bound = f"{low:.1e}" if low == high else f"{low:.1e} to {high:.1e}"
            cells += [bound, f"{diff:.1e}"]
        print(f"| `{layer_type}` | " + " | ".join(cells) + " |")
    exact = sum(measured["uniform"][t][1] <= 1e-5 for t in LAYER_CASES)
    print(f"\nWith inputs in [0, 1), {exact} of {len(LAYER_CASES)} layer types are held to 1e-5 itself in every case.")


if __name__ == "__main__":
    main()
