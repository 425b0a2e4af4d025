"""`make compatibility`: the keras.applications compatibility table, measured, into docs/compatibility.md.

Each CNN of keras.applications in the pinned Keras is built with random weights at its smallest input
(tests/applications.py, as tests/backends/test_keras_zoo.py builds them), imported with
``cnnspec.import_keras``, and run: the imported spec in Keras and torch against the application itself,
and the exported ONNX file as written in ONNX Runtime (default optimisation), OpenVINO and OpenCV DNN.
A cell shows the largest difference from the application's output, and whether it is within the
tolerance rule (1e-5 scaled by the largest magnitude any layer carries). README.md holds the same table
between the ``compatibility`` markers; tests/docs/test_readme.py checks the copy.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine  # noqa: E402

from tests.applications import APPLICATIONS, build_application, images  # noqa: E402

OUT = ROOT / "docs" / "compatibility.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- compatibility: begin (docs/compatibility.py) -->", "<!-- compatibility: end -->"
RUNTIMES = {"ONNX Runtime": "onnxruntime (enable_all)", "OpenVINO": "openvino (CPU, f32)", "OpenCV DNN": "opencv dnn"}


def _cell(difference: float, bound: float) -> str:
    return f"{'✓' if difference <= bound else '✗'} {difference:.0e}"


def row(name: str) -> list[str]:
    """Model, input, parameters, imports, then one cell per backend and runtime."""
    import cnnspec
    from cnnspec.backends import load_backend
    from cnnspec.backends.onnx_backend import runners
    from cnnspec.errors import CnnspecError
    from cnnspec.numerics import layer_tolerances, max_difference

    model = build_application(name)
    side = APPLICATIONS[name]
    head = [name, f"{side}x{side}", f"{model.count_params():,}"]
    try:
        spec, weights = cnnspec.import_keras(model, name=name.lower())
    except CnnspecError as err:
        return [*head, f"✗ {err}", *[""] * (2 + len(RUNTIMES))]
    same_count = spec.summary().total_params == model.count_params()
    x = images(side)
    expected = np.asarray(model(x, training=False))
    keras_backend, torch_backend, onnx_backend = (load_backend(b) for b in ("keras", "torch", "onnx"))
    layers = keras_backend.layer_outputs(keras_backend.build(spec, weights), x)
    bound = layer_tolerances(x, layers)[-1]
    cells = [
        _cell(max_difference(backend.predict(backend.build(spec, weights), x), expected), bound)
        for backend in (keras_backend, torch_backend)
    ]
    data = onnx_backend.to_onnx(spec, weights).SerializeToString()
    for runner in RUNTIMES.values():
        if runners.missing(runner) is not None:
            cells.append("not installed")
            continue
        try:
            cells.append(_cell(max_difference(runners.run(runner, data, x)["output"], expected), bound))
        except CnnspecError as err:
            cells.append(f"✗ fails: {str(err).splitlines()[0][:80]}")
    return [*head, "✓" if same_count else "✗ counts differ", *cells]


def table(rows: list[list[str]]) -> str:
    header = ["model", "input", "parameters", "imports", "Keras", "torch", *RUNTIMES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(cells) + " |" for cells in rows)]) + "\n"


def main() -> None:
    import keras

    rows = []
    for name in APPLICATIONS:
        started = time.perf_counter()
        rows.append(row(name))
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    body = table(rows)
    OUT.write_text(
        "# Compatibility: keras.applications\n\n"
        f"Every CNN of `keras.applications` in Keras {keras.__version__}, built with random weights "
        "(`weights=None`, 10 classes, batch-norm statistics drawn at random) at its smallest input and imported "
        "with `cnnspec import keras`. A cell gives the largest difference from the application's own output on "
        "two random 0-255 images and ✓ where it is within the [tolerance rule](parity.md) (1e-5 times the "
        "largest magnitude any layer carries). Keras and torch run the imported spec; the runtimes run the file "
        "`cnnspec export onnx` writes, ONNX Runtime at its default optimisation level. "
        "tests/backends/test_keras_zoo.py asserts the same for Keras, torch, ONNX Runtime (every level) and "
        "OpenVINO, layer by layer (an output saturated near one-hot shows little on its own), and one training step.\n\n"
        f"Measured on {machine()}, {time.strftime('%Y-%m-%d', time.gmtime())}, by `make compatibility` "
        "(docs/compatibility.py).\n\n" + body
    )
    readme = README.read_text()
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    README.write_text(readme[:start] + "\n" + body + readme[end:])
    print(body)


if __name__ == "__main__":
    main()
