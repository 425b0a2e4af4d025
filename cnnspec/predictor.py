"""``cnnspec.Predictor``: run an exported ``.onnx`` file with ONNX Runtime (GPU when it really loads).

>>> predictor = cnnspec.Predictor("digits.onnx")          # doctest: +SKIP
>>> predictor.top_k(images, k=3)                          # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any


def Predictor(model: Any, provider: str | None = None, threads: int | None = None) -> Any:  # noqa: N802 - a class to users
    """An ONNX Runtime predictor; see ``cnnspec.backends.onnx_backend.runtime.Predictor``."""
    from .backends import load_backend

    return load_backend("onnx").Predictor(model, provider=provider, threads=threads)
