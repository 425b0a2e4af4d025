"""``cnnspec.Predictor``: run an exported ``.onnx`` file with ONNX Runtime (GPU when it really loads).

>>> predictor = cnnspec.Predictor("digits.onnx")          # doctest: +SKIP
>>> predictor.top_k(images, k=3)                          # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any


def Predictor(  # noqa: N802 - a class to users
    model: Any, provider: str | None = None, threads: int | None = None, runtime: str = "onnxruntime"
) -> Any:
    """A predictor for an exported file in ONNX Runtime, OpenVINO (``runtime="openvino"``) or the faster of the
    two here (``"auto"``); see ``cnnspec.backends.onnx_backend.runtime.Predictor``."""
    from .backends import load_backend

    return load_backend("onnx").Predictor(model, provider=provider, threads=threads, runtime=runtime)
