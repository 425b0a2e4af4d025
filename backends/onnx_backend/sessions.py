"""The runtimes a ``Predictor`` can run an exported file in: ONNX Runtime, OpenVINO, or the faster of the two.

Both are sessions with ONNX Runtime's face (``run(names, feeds)``, ``get_outputs()``, ``get_providers()``),
so the predictor does not care which it holds. ``auto`` times both on this machine, on this file, at
batch 1 (the latency a ``predict`` call sees) and keeps the faster, with the measurement as its reason:
which runtime wins depends on the CPU and on the network, so it is measured rather than assumed.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from cnnspec.errors import CnnspecError

RUNTIMES = ("onnxruntime", "openvino", "auto")
INSTALL_OPENVINO = "pip install 'cnnspec[runtimes]'"


@dataclass(frozen=True)
class _Output:
    name: str


class OpenVinoSession:
    """An OpenVINO CPU compilation of the file, in float32 (on CPUs with native bf16 OpenVINO's default would be
    bf16 inference, about 1e-3 off), tuned for latency; one infer request reused across calls."""

    def __init__(self, data: bytes, threads: int | None = None):
        if importlib.util.find_spec("openvino") is None:
            raise CnnspecError(f"the openvino runtime is not installed; {INSTALL_OPENVINO}")
        import openvino
        import openvino.properties as props
        import openvino.properties.hint as hints

        config: dict[Any, Any] = {
            hints.inference_precision: openvino.Type.f32,
            hints.performance_mode: hints.PerformanceMode.LATENCY,
        }
        if threads:
            config[props.inference_num_threads] = threads
        core = openvino_core()
        self.compiled = core.compile_model(core.read_model(data, b""), "CPU", config)
        self.request = self.compiled.create_infer_request()
        # an output may have several names (aliases): each leads to it
        self.by_name = {name: output for output in self.compiled.outputs for name in output.get_names()}

    def get_outputs(self) -> list[_Output]:
        return [_Output(sorted(output.get_names())[0]) for output in self.compiled.outputs]

    def get_providers(self) -> list[str]:
        return ["OpenVINO CPU"]

    def run(self, names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        results = self.request.infer(feeds)
        wanted = names or [output.name for output in self.get_outputs()]
        return [np.array(results[self.by_name[name]]) for name in wanted]  # a copy: the request reuses its buffers


@functools.cache
def openvino_core():  # noqa: ANN201 - openvino is untyped
    """One OpenVINO Core for the process (making one loads its plugins)."""
    import openvino

    return openvino.Core()


def _batch_one_seconds(session: Any, example: np.ndarray, repeats: int = 20) -> float:
    """The median seconds of one batch-1 call after a warm-up."""
    feeds = {"input": example}
    session.run(["output"], feeds)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(["output"], feeds)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def open_session(
    runtime: str, open_onnxruntime: Callable[[], Any], data: bytes, threads: int | None, example: np.ndarray
) -> tuple[Any, str, str]:
    """(session, the runtime chosen, why): ``onnxruntime``, ``openvino``, or ``auto`` (the faster at batch 1 of
    the two here; ONNX Runtime alone when OpenVINO is not installed)."""
    if runtime not in RUNTIMES:
        raise CnnspecError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "onnxruntime":
        return open_onnxruntime(), "onnxruntime", "asked for"
    if runtime == "openvino":
        return OpenVinoSession(data, threads), "openvino", "asked for"
    if importlib.util.find_spec("openvino") is None:
        return open_onnxruntime(), "onnxruntime", f"auto: openvino is not installed ({INSTALL_OPENVINO})"
    candidates = {"onnxruntime": open_onnxruntime(), "openvino": OpenVinoSession(data, threads)}
    seconds = {name: _batch_one_seconds(session, example) for name, session in candidates.items()}
    best = min(seconds, key=seconds.__getitem__)
    measured = ", ".join(f"{name} {1000 * value:.3f} ms" for name, value in seconds.items())
    return candidates[best], best, f"auto: the faster at batch 1 on this machine ({measured})"
