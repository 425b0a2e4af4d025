"""Compiler targets. Each backend is imported only when asked for.

Every backend module offers the same functions (``build``, ``set_weights``,
``get_weights``, ``predict``, ``Trainer``), so the training driver, evaluation
and the parity tool never branch on the framework.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from cnnspec.errors import BackendUnavailable

# backend name -> (module, the framework packages it imports, the extra that installs them)
BACKENDS = {
    "torch": ("cnnspec.backends.torch_backend", ("torch",), "torch"),
    "keras": ("cnnspec.backends.keras_backend", ("tensorflow", "keras"), "keras"),
    "onnx": ("cnnspec.backends.onnx_backend", ("onnx", "onnxruntime"), "onnx"),
}
TRAINING_BACKENDS = ("torch", "keras")


def load_backend(name: str) -> ModuleType:
    """The backend module, or ``BackendUnavailable`` saying which extra to install."""
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    module, frameworks, extra = BACKENDS[name]
    if name == "keras":
        quiet_tensorflow()
    for framework in frameworks:
        try:
            importlib.import_module(framework)
        except ImportError as err:
            raise BackendUnavailable(
                f"the {name} backend needs {framework}, which is not installed ({err}); "
                f"install it with: pip install 'cnnspec[{extra}]'"
            ) from None
    return importlib.import_module(module)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up info logs (not its warnings or errors) before it loads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
