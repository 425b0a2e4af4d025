"""Inference: ONNX Runtime (cnnspec.Predictor and a bare session) vs torch eager vs Keras, and export time.

Same model (mnist_cnn, one set of random weights), same inputs, same process, timed in turns (each
round calls every runtime once). Batch 1: median latency of single calls; batch 256: images per second.
Target (issue 5): ONNX Runtime at least 4x faster than torch eager at batch 1 on CPU.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, interleaved, median_time, medians  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import load_backend  # noqa: E402
from cnnspec.weights import random_weights  # noqa: E402

CALLS_1, CALLS_256 = 300, 15


def main() -> dict[str, dict[str, float]]:
    import torch

    torch_backend, keras_backend, onnx_backend = (load_backend(n) for n in ("torch", "keras", "onnx"))
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    weights = random_weights(spec, 0)
    rng = np.random.default_rng(0)
    x1 = rng.random((1, 28, 28, 1), dtype=np.float32)
    x256 = rng.random((256, 28, 28, 1), dtype=np.float32)

    export_s = median_time(lambda: onnx_backend.to_onnx(spec, weights), repeats=20)
    proto = onnx_backend.to_onnx(spec, weights)
    predictor = onnx_backend.Predictor(proto, provider="cpu")
    session = predictor.session  # the same tuned session, called with no cnnspec code around it
    torch_model = torch_backend.build(spec, weights)
    keras_model = keras_backend.build(spec, weights)
    t1 = torch.from_numpy(np.ascontiguousarray(x1.transpose(0, 3, 1, 2)))
    t256 = torch.from_numpy(np.ascontiguousarray(x256.transpose(0, 3, 1, 2)))

    def torch_call(t):
        with torch.inference_mode():
            return torch_model(t)

    runners = {
        "onnxruntime (cnnspec.Predictor)": (lambda: predictor.predict(x1), lambda: predictor.predict(x256)),
        "onnxruntime (bare session.run)": (
            lambda: session.run(["output"], {"input": x1}),
            lambda: session.run(["output"], {"input": x256}),
        ),
        "torch eager (inference_mode)": (lambda: torch_call(t1), lambda: torch_call(t256)),
        "keras (model call / predict)": (
            lambda: keras_model(x1, training=False),
            lambda: keras_model.predict(x256, batch_size=256, verbose=0),
        ),
    }
    # in turns (one call of each runtime per round), so machine noise hits all alike
    latency = medians(interleaved({name: one for name, (one, _) in runners.items()}, repeats=CALLS_1, warmup=20))
    batch = medians(interleaved({name: many for name, (_, many) in runners.items()}, repeats=CALLS_256, warmup=3))
    results = {name: {"batch1_ms": latency[name] * 1000, "batch256_img_s": 256 / batch[name]} for name in runners}
    results["export"] = {"ms": export_s * 1000}
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    torch_ms = results["torch eager (inference_mode)"]["batch1_ms"]
    lines = ["| runtime | batch 1 latency | vs torch eager | batch 256 throughput |", "|---|---|---|---|"]
    for name, r in results.items():
        if name == "export":
            continue
        lines.append(
            f"| {name} | {r['batch1_ms']:.3f} ms | {torch_ms / r['batch1_ms']:.1f}x | "
            f"{r['batch256_img_s']:,.0f} img/s |"
        )
    lines.append(f"\nExport (spec + weights -> ONNX graph, in memory): {results['export']['ms']:.1f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    started = time.perf_counter()
    print(table(main()))
