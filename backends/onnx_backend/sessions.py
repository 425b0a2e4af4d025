"""The runtimes a ``Predictor`` can run an exported file in: ONNX Runtime, OpenVINO, or the faster of the two.

Both are sessions with ONNX Runtime's face (``run(names, feeds)``, ``get_outputs()``, ``get_providers()``),
so the predictor does not care which it holds. ``auto`` times both on this machine, on this file, at
batch 1 (the latency a ``predict`` call sees) and keeps the faster, with the measurement as its reason:
which runtime wins depends on the CPU and on the network, so it is measured rather than assumed.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from cnnspec.errors import CnnspecError

RUNTIMES = ("onnxruntime", "openvino", "auto")
INSTALL_OPENVINO = "pip install 'cnnspec[runtimes]'"
SLICE_MIN = 32  # images per slice at least: a smaller slice gains less from running alone than it costs
SETTLE_S = 0.1  # a pause before each timed run when choosing how to run large batches (SlicedBatches)


def physical_cores() -> int:
    """Physical cores this process may use, which ONNX Runtime sizes its intra-op pool by (logical cores where
    /proc/cpuinfo does not say)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open("/proc/cpuinfo") as info:
            text = info.read()
    except OSError:
        return usable
    fields = [
        {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in block.splitlines())}
        for block in text.split("\n\n")
    ]
    cores = {(cpu.get("physical id"), cpu["core id"]) for cpu in fields if "core id" in cpu}
    return max(1, min(usable, len(cores))) if cores else usable


class SlicedBatches:
    """A large CPU batch cut into one slice per core, the slices run at once on one single-threaded ONNX
    Runtime session (its ``run`` is thread-safe and releases the GIL), where that is measured faster.

    Throughput, not latency: each core works through its own images with no barrier between cores after every
    operator, as the intra-op pool needs. Whether that wins depends on the network and the machine: on the
    2-core EPYC of benchmarks/results.md it ran mnist_cnn at batch 256 faster than the one multi-threaded call
    and digits_cnn (8x8 images, a few ms a batch) slower. So the first large batch runs both ways, timed in
    turns, and the faster way serves every later large batch (``choice`` says which, with the times). The
    session is opened at that first large batch, so a predictor used for single images never holds a second
    copy of the weights.
    """

    def __init__(self, open_single: Callable[[], Any], parts: int):
        self.parts = parts
        self._open: Callable[[], Any] | None = open_single
        self._session: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.faster: bool | None = None  # sliced faster than whole: unknown until the first large batch
        self.choice = "not measured yet: no batch of SLICE_MIN images per core so far"

    def slices(self, images: int) -> int:
        return min(self.parts, images // SLICE_MIN)

    def run(self, names: list[str], x: np.ndarray, whole: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The batch's outputs, sliced or ``whole``, whichever the first large batch measured faster."""
        with self._lock:
            if self._open is not None:
                self._session = self._open()
                self._pool = ThreadPoolExecutor(self.parts, thread_name_prefix="cnnspec-slice")
                self._open = None  # the closure holds the model's bytes
            if self.faster is None:
                return self._measure(names, x, whole)
        return self._sliced(names, x) if self.faster else whole(x)

    def _sliced(self, names: list[str], x: np.ndarray) -> np.ndarray:
        session, pool = self._session, self._pool
        assert pool is not None
        parts = np.array_split(x, self.slices(len(x)))
        return np.concatenate(list(pool.map(lambda part: session.run(names, {"input": part})[0], parts)))

    def _measure(self, names: list[str], x: np.ndarray, whole: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        outputs = self._sliced(names, x)  # also the warm-up of the new session
        times: dict[str, list[float]] = {"sliced": [], "whole": []}
        for _ in range(2):  # in turns, the best of two each: one slow spell does not decide
            for way, run in (("whole", lambda: whole(x)), ("sliced", lambda: self._sliced(names, x))):
                # ONNX Runtime's worker threads spin for about 60 ms after a run: left to settle, so each way is
                # timed as it runs batch after batch, not against the other session's spinning threads
                time.sleep(SETTLE_S)
                start = time.perf_counter()
                run()
                times[way].append(time.perf_counter() - start)
        sliced_s, whole_s = min(times["sliced"]), min(times["whole"])
        self.faster = sliced_s < whole_s
        self.choice = (
            f"{'sliced' if self.faster else 'whole'}: a batch of {len(x)} took {sliced_s * 1e3:.2f} ms in "
            f"{self.slices(len(x))} slices, {whole_s * 1e3:.2f} ms whole (this machine, first large batch)"
        )
        return outputs


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
