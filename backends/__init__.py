"""Compiler targets. Each backend is imported only when asked for.

Every backend module meets the same contract (``protocol.Backend``: ``build``,
``predict``, ``layer_outputs``, ``get_weights``; ``protocol.TrainingBackend`` adds
``set_weights`` and ``Trainer``), so the training driver, evaluation and the
parity tool never branch on the framework.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING, cast

from cnnspec.errors import BackendUnavailable

if TYPE_CHECKING:
    from .protocol import Backend, TrainingBackend

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


def inference_backend(name: str) -> Backend:
    """``load_backend`` typed by the contract every backend meets."""
    return cast("Backend", load_backend(name))


def training_backend(name: str) -> TrainingBackend:
    """A backend that trains (torch or keras), typed by its contract."""
    if name not in TRAINING_BACKENDS:
        raise BackendUnavailable(f"the {name} backend does not train; choose one of: {', '.join(TRAINING_BACKENDS)}")
    return cast("TrainingBackend", load_backend(name))


# TensorFlow's start-up chatter, printed by C++ before its log level applies.
# Anything else it prints while importing still reaches the user.
_TF_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "Unable to register cu",
    "TF-TRT Warning",
    "computation placer already registered",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)


def quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up noise filtered out (warnings and errors still shown)."""
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" in sys.modules:
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf  # noqa: F401

            tf.config.list_physical_devices("GPU")  # CUDA probing logs happen here, not at import
        except ImportError:
            pass  # load_backend reports the missing package
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        kept = [
            line
            for line in captured.read().decode(errors="replace").splitlines(keepends=True)
            if line.strip() and not any(noise in line for noise in _TF_NOISE)
        ]
    if kept:
        sys.stderr.write("".join(kept))
