"""Every runtime an exported file is proven in: ONNX Runtime at each optimisation level, OpenVINO, OpenCV.

Each runner takes the file's bytes, exactly as written, and an input in the file's layout, and returns
every graph output by name. Export verification runs the ONNX Runtime ones; ``cnnspec parity`` and the
tests run all that are installed (OpenVINO and OpenCV come with the ``runtimes`` extra). Optimisers
rewrite the graph differently at each level and in each runtime, so a file proven in one session is
not proven in another: that is why this table exists.
"""

from __future__ import annotations

import importlib.util
from typing import Callable

import numpy as np
import onnxruntime as ort

from cnnspec.errors import CnnspecError

from .runtime import OPTIMIZATION_LEVELS, quiet_options
from .sessions import openvino_core

Outputs = dict[str, np.ndarray]
Runner = Callable[[bytes, np.ndarray], Outputs]
INSTALL_RUNTIMES = "pip install 'cnnspec[runtimes]'"


class RuntimeFailed(CnnspecError):
    """A runtime refused or failed to run an exported file."""


def _onnxruntime(level: str) -> Runner:
    def run(model: bytes, x: np.ndarray) -> Outputs:
        session = ort.InferenceSession(model, quiet_options(level=level), providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(names, {session.get_inputs()[0].name: x})))

    return run


def _openvino(model: bytes, x: np.ndarray) -> Outputs:
    import openvino
    import openvino.properties.hint as hints

    core = openvino_core()
    # f32, not the CPU plugin's default: on CPUs with native bf16 (AVX512-BF16, AMX) that default is bf16
    # inference, about 1e-3 off, which no float32 tolerance admits
    compiled = core.compile_model(core.read_model(model, b""), "CPU", {hints.inference_precision: openvino.Type.f32})
    results = compiled(x)
    return {name: results[output] for output in compiled.outputs for name in output.get_names()}  # names are aliases


def _opencv(model: bytes, x: np.ndarray) -> Outputs:
    import cv2

    net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
    net.setInput(x)
    names = list(net.getUnconnectedOutLayersNames())  # OpenCV 5's engine answers all graph outputs or none
    return dict(zip(names, net.forward(names)))


# runner name -> (the module it needs, how to install it, the runner)
RUNNERS: dict[str, tuple[str, str, Runner]] = {
    **{
        f"onnxruntime ({level})": ("onnxruntime", "pip install 'cnnspec[onnx]'", _onnxruntime(level))
        for level in OPTIMIZATION_LEVELS
    },
    "openvino (CPU, f32)": ("openvino", INSTALL_RUNTIMES, _openvino),
    "opencv dnn": ("cv2", INSTALL_RUNTIMES, _opencv),
}
ONNXRUNTIME_RUNNERS = tuple(name for name in RUNNERS if name.startswith("onnxruntime"))


def missing(name: str) -> str | None:
    """Why runner ``name`` cannot run here (its module is not installed), or None."""
    module, install, _ = RUNNERS[name]
    return None if importlib.util.find_spec(module) else f"{module} is not installed; {install}"


def run(name: str, model: bytes, x: np.ndarray) -> Outputs:
    """Every graph output of ``model`` for ``x`` in runner ``name``; ``RuntimeFailed`` (one line) if it refuses."""
    try:
        return RUNNERS[name][2](model, np.ascontiguousarray(x, dtype=np.float32))
    except Exception as err:  # noqa: BLE001 - each runtime raises its own kinds; all mean "it cannot run this file"
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RuntimeFailed(f"{name} cannot run the file: {first_line[:300]}") from None
