"""The contract every backend module meets, checked by the type checker (mypy) and by a test.

A backend is a module, not a class: ``cnnspec.backends.torch_backend`` itself is the
``TrainingBackend``. The training driver, evaluation, ``cnnspec.Model`` and the
parity tool use only these names, so they never branch on the framework. The block
under ``TYPE_CHECKING`` assigns each module to its protocol: mypy rejects a backend
whose functions are missing or have the wrong signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import numpy as np

    from cnnspec.placement import Placement
    from cnnspec.spec import ModelSpec
    from cnnspec.weights import Weights

# progress(batches done, batches in all, metrics so far): what fit_epoch reports to the progress bar
Progress = Callable[[int, int, Callable[[], "dict[str, float]"]], None]


class TrainerProtocol(Protocol):
    """One epoch of training and one evaluation pass, with Keras's optimizer and loss."""

    def prepare(self, x: Any, y: np.ndarray) -> Any:
        """A split (images NHWC; targets as ``fit_to_spec`` left them: class indices or values) in the form this
        backend trains on, made once."""

    def fit_epoch(
        self, data: Any, order: np.ndarray, batch_size: int, seed: int, progress: Progress | None = None
    ) -> dict[str, float]:
        """One pass over ``data`` in ``order``: ``{"loss", <each of training.metrics>}`` as Keras's ``fit`` logs them."""

    def evaluate(self, data: Any, batch_size: int = 1024) -> dict[str, float]: ...

    def optimizer_state(self) -> dict[str, np.ndarray]: ...

    def load_optimizer_state(self, arrays: dict[str, np.ndarray]) -> None: ...

    def learning_rate(self) -> float:
        """The rate of the last optimizer step (a schedule's at that step), as the float32 the framework uses."""

    def set_learning_rate(self, value: float) -> None:
        """Set a constant rate (ReduceLROnPlateau); optimizers with a schedule refuse, as Keras's do."""


class Backend(Protocol):
    """Build a spec with canonical weights, run it, and move weights in and out."""

    @property
    def NAME(self) -> str: ...  # noqa: N802

    def build(
        self,
        spec: ModelSpec,
        weights: Weights | None = None,
        seed: int | None = None,
        precision: str = "fp32",
        *,
        placement: Placement | None = None,
    ) -> Any:
        """The framework's model of ``spec`` on ``placement`` (default: the CPU); default weights: the seeded
        Keras-style initial ones."""

    def predict(self, model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The spec's output for channels-last images (N, H, W, C)."""

    def layer_outputs(self, model: Any, x: np.ndarray) -> list[np.ndarray]:
        """Every spec layer's output, channels-last like Keras."""

    def get_weights(self, model: Any) -> Weights: ...


class TrainingBackend(Backend, Protocol):
    """A backend that trains: weights load into a built model, and it has a ``Trainer``."""

    def set_weights(self, model: Any, weights: Weights) -> Any: ...

    def place(self, device: str = "auto", nproc: int = 1) -> Placement:
        """Resolve ``device`` (auto, cpu, cuda, cuda:N) and set up ``nproc`` data-parallel replicas, or a
        RunError in one line (no CUDA, too few devices)."""

    @property
    def Trainer(self) -> Callable[..., TrainerProtocol]:  # noqa: N802  (a class in each backend module)
        """``Trainer(model, training, learning_rate=None, precision="fp32", placement=None)``; read-only, so a
        class satisfies it."""


if TYPE_CHECKING:  # the conformance check: mypy fails here if a backend module breaks its contract
    from . import keras_backend, onnx_backend, torch_backend

    _torch: TrainingBackend = torch_backend
    _keras: TrainingBackend = keras_backend
    _onnx: Backend = onnx_backend
