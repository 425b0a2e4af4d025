"""Where Keras computes: one device, or N local devices under ``tf.distribute.MirroredStrategy``.

TensorFlow fixes its devices when its runtime starts (the first op, or the first
look at its logical devices): hiding the GPUs and splitting the CPU into N logical
devices must happen before that. ``place`` therefore only *configures*; when the
runtime already started, it accepts a configuration that already is what was asked
(``place`` called twice in one process) and otherwise answers a ``RunError``.

One process holds every replica (``rank`` 0, ``processes`` 1, ``replicas`` N): Keras's
``fit`` splits each global batch across the replicas and the optimizer sums their
gradients.

>>> placement = place("cpu", nproc=2)                          # doctest: +SKIP
>>> placement.describe()                                       # doctest: +SKIP
'2 logical CPU devices (MirroredStrategy)'
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

import tensorflow as tf

from cnnspec.errors import RunError
from cnnspec.placement import Placement

NO_GPU = (
    "TensorFlow sees no GPU (a CPU-only TensorFlow, or no NVIDIA driver): "
    "install tensorflow[and-cuda] and an NVIDIA driver, or use --device cpu"
)
TOO_LATE = "TensorFlow started before the device was chosen (choose it before any TensorFlow work)"


@dataclass
class KerasPlacement(Placement):
    """A ``Placement`` with the ``tf.distribute.Strategy`` its replicas share (None: one device)."""

    strategy: Any = field(default=None, repr=False)

    def scope(self) -> ContextManager[Any]:
        """Where variables are made and models compiled: the strategy's scope (nothing for one device)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> str:
        if self.strategy is None:
            return super().describe()
        kind = "GPUs" if self.device.startswith("gpu") else "logical CPU devices"
        return f"{self.replicas} {kind} (MirroredStrategy)" + (f" ({self.reason})" if self.reason else "")


def as_keras(placement: Placement | None) -> KerasPlacement:
    """``placement`` as a Keras one: None, or another backend's one device, is Keras's default device."""
    if isinstance(placement, KerasPlacement):
        return placement
    if placement is not None and placement.distributed:
        raise TypeError("several replicas need the Keras backend's own placement (keras_backend.place)")
    return KerasPlacement()


def place(device: str = "auto", nproc: int = 1) -> KerasPlacement:
    """TensorFlow's devices for ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``; normalised by
    ``cnnspec.placement.check_device_request``) and ``nproc`` replicas. Call it before anything else
    touches TensorFlow."""
    gpus = tf.config.list_physical_devices("GPU")  # listing does not start the runtime
    reason = ""
    if device == "auto":
        device, reason = ("cuda", "auto: TensorFlow sees a GPU") if gpus else ("cpu", "auto: TensorFlow sees no GPU")
    if device == "cpu":
        return _on_cpu(nproc, reason)
    return _on_gpus(gpus, device, nproc, reason)


def _configure(is_done: Callable[[], bool], configure: Callable[[], None], what: str) -> None:
    """Run ``configure`` unless ``is_done`` already; a started runtime refuses it (RuntimeError): a RunError."""
    if is_done():
        return
    try:
        configure()
    except RuntimeError as error:
        raise RunError(f"{what}: {TOO_LATE}") from error


def _on_cpu(nproc: int, reason: str) -> KerasPlacement:
    _configure(  # (auto comes here only when there is no GPU to hide)
        lambda: not tf.config.get_visible_devices("GPU"),
        lambda: tf.config.set_visible_devices([], "GPU"),
        "--device cpu could not hide the GPU",
    )
    if nproc == 1:
        return KerasPlacement(device="cpu", reason=reason)
    cpu = tf.config.list_physical_devices("CPU")[0]
    configuration = [tf.config.LogicalDeviceConfiguration()] * nproc
    _configure(
        lambda: len(tf.config.get_logical_device_configuration(cpu) or []) == nproc,
        lambda: tf.config.set_logical_device_configuration(cpu, configuration),
        f"--nproc {nproc} needs {nproc} logical CPU devices",
    )
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    # ReductionToOneDevice sums on one device and copies back: works on CPUs (NCCL is GPU-only) and is deterministic
    strategy = tf.distribute.MirroredStrategy(names, cross_device_ops=tf.distribute.ReductionToOneDevice())
    return KerasPlacement(device="cpu", reason=reason, replicas=nproc, strategy=strategy)


def _on_gpus(gpus: list, device: str, nproc: int, reason: str) -> KerasPlacement:
    """GPUs ``first`` .. ``first + nproc - 1`` (``cuda`` is GPU 0), the only ones TensorFlow is left to see."""
    first = int(device.partition(":")[2] or 0)
    if not gpus:
        raise RunError(f"--device {device}: {NO_GPU}")
    if first + nproc > len(gpus):
        wanted = f"GPU {first}" if nproc == 1 else f"GPUs {first}..{first + nproc - 1} (--nproc {nproc})"
        raise RunError(f"--device {device}: {wanted} asked for, TensorFlow sees {len(gpus)} GPU(s)")
    chosen = gpus[first : first + nproc]
    _configure(
        lambda: tf.config.get_visible_devices("GPU") == chosen,
        lambda: tf.config.set_visible_devices(chosen, "GPU"),
        f"--device {device} could not select its GPU(s)",
    )
    name = f"gpu:{first}"  # the physical index; TensorFlow itself renumbers the visible GPUs from 0
    if nproc == 1:
        return KerasPlacement(device=name, reason=reason)
    strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("GPU")])
    return KerasPlacement(device=name, reason=reason, replicas=nproc, strategy=strategy)


__all__ = ["KerasPlacement", "as_keras", "place"]
