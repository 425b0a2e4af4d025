"""A spec compiled for one backend: the object ``cnnspec.build`` returns and ``cnnspec.train`` trains.

A ``Model`` knows its backend, so nothing downstream names the framework again:

>>> model = cnnspec.build("specs/digits_cnn.yaml", backend="keras")    # doctest: +SKIP
>>> model.predict(images_nhwc).shape                                   # doctest: +SKIP
(n, 10)
>>> model.native                                                       # the keras.Model  # doctest: +SKIP

Its methods call the backend module (``cnnspec.backends.inference_backend(model.backend)``,
the contract in ``cnnspec.backends.protocol``), so they behave exactly as that module's
``predict``, ``layer_outputs``, ``get_weights`` and ``set_weights`` do. Weights are
canonical (see ``cnnspec.weights``) whatever the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .backends.protocol import Backend
    from .shapes import ShapeReport
    from .spec import ModelSpec
    from .weights import Weights


class Model:
    """``spec`` compiled for ``backend`` ("torch", "keras" or "onnx"); ``native`` is the framework's own
    object (torch ``nn.Module``, ``keras.Model``, or the ONNX backend's ``OnnxModel``)."""

    def __init__(self, spec: ModelSpec, backend: str, native: Any):
        from .backends import inference_backend

        self.spec = spec
        self.backend = backend
        self.native = native
        self._module: Backend = inference_backend(backend)  # an unknown or missing backend fails here, clearly

    @property
    def backend_module(self) -> Backend:
        """The backend module (``build``, ``predict``, ``layer_outputs``, ``get_weights``; training ones more)."""
        return self._module

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The spec's output (class probabilities for a softmax head) for channels-last images (N, H, W, C)."""
        return self._module.predict(self.native, x, batch_size=batch_size)

    def layer_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Every spec layer's output for ``x``, channels-last like Keras (the last one is ``predict``'s)."""
        return self._module.layer_outputs(self.native, x)

    def get_weights(self) -> Weights:
        """The weights in canonical layout (``"<layer>/<variable>"`` -> float32 array, Keras shapes)."""
        return self._module.get_weights(self.native)

    def set_weights(self, weights: Weights) -> Model:
        """Load canonical weights (checked against the spec); returns the model itself."""
        setter = getattr(self._module, "set_weights", None)
        if setter is not None:
            setter(self.native, weights)
        else:  # inference-only backends (onnx) hold their weights in the graph: rebuild it
            self.native = self._module.build(self.spec, weights)
        return self

    def summary(self) -> ShapeReport:
        """The spec's layers, output shapes and parameter counts (``print`` it for the Keras-style table)."""
        return self.spec.summary()

    def __repr__(self) -> str:
        return f"Model(spec={self.spec.name!r}, backend={self.backend!r}, layers={len(self.spec.layers)})"


# where a framework model's classes come from -> the backend that runs it
_FRAMEWORK_MODULES = {
    "cnnspec.backends.torch_backend": "torch",
    "cnnspec.backends.keras_backend": "keras",
    "cnnspec.backends.onnx_backend": "onnx",
    "torch": "torch",
    "keras": "keras",
}


def backend_of(native: Any) -> str | None:
    """The backend of a bare framework model, told by its classes' modules (imports nothing); None if unknown."""
    for cls in type(native).__mro__:
        module = getattr(cls, "__module__", None) or ""
        for prefix, backend in _FRAMEWORK_MODULES.items():
            if module == prefix or module.startswith(prefix + "."):
                return backend
    return None
