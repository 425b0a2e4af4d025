"""Learning rates over training, in plain Python: Keras 3's schedules and ReduceLROnPlateau.

One place for the formulas, so the torch optimizer, the epoch loop and the
history agree with each other and with Keras. Nothing here imports a framework
or the rest of cnnspec; the spec classes call in with their fields.

Schedules are functions of the optimizer step (Keras's ``optimizer.iterations``:
0 for the first batch), as ``keras/src/optimizers/schedules/learning_rate_schedule.py``
computes them (there in float32; here in float64, within a float32 rounding of it).

>>> exponential_decay(10, initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)
0.05
>>> piecewise_constant_decay(3, boundaries=[3, 6], values=[1.0, 0.5, 0.1])
1.0
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Callable, Sequence


def exponential_decay(
    step: int, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> float:
    """``initial * decay_rate ** (step / decay_steps)``, the exponent floored when ``staircase``."""
    p = step / decay_steps
    return initial_learning_rate * decay_rate ** (math.floor(p) if staircase else p)


def cosine_decay(step: int, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0) -> float:
    """Half a cosine from ``initial`` down to ``alpha * initial`` over ``decay_steps``, then flat."""
    fraction = min(step, decay_steps) / decay_steps
    cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
    return initial_learning_rate * ((1 - alpha) * cosine + alpha)


def piecewise_constant_decay(step: int, boundaries: Sequence[int], values: Sequence[float]) -> float:
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while ``step <= boundaries[i]``, then the last.

    Keras's boundaries are inclusive upper bounds: the value changes on the step *after* a boundary.
    """
    for boundary, value in zip(boundaries, values):
        if step <= boundary:
            return value
    return values[-1]


SCHEDULES: dict[str, Callable[..., float]] = {
    "exponential_decay": exponential_decay,
    "cosine_decay": cosine_decay,
    "piecewise_constant_decay": piecewise_constant_decay,
}


# -- float32, as the frameworks hold a learning rate ------------------------------------------
def float32(value: float) -> float:
    """``value`` rounded to the nearest float32 (what a Keras learning-rate variable stores)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def shortest_float32(value: float) -> float:
    """The shortest decimal with the same float32 as ``value``: 0.001, not 0.0010000000474974513.

    Both frameworks compute with the float32, so this loses nothing and reads well in history.json.
    """
    target = float32(value)
    for digits in range(1, 10):  # 9 significant digits always round-trip a float32
        candidate = float(f"{target:.{digits}g}")
        if float32(candidate) == target:
            return candidate
    return target


# -- ReduceLROnPlateau -------------------------------------------------------------------------
@dataclass
class Plateau:
    """What ReduceLROnPlateau remembers between epochs (Keras's ``best`` and ``wait``)."""

    best: float | None = None
    wait: int = 0


def improved(value: float, best: float | None, min_delta: float, lower_is_better: bool) -> bool:
    """Keras's MonitorCallback._is_improvement: ``value - min_delta`` beats ``best``, with
    ``min_delta`` negated in "min" mode (so a loss must fall by more than ``min_delta``).

    Keras compares with ``ops.less``/``ops.greater``, which turn Python floats into float32 tensors.
    """
    if best is None:
        return True
    if lower_is_better:
        return float32(value + min_delta) < float32(best)
    return float32(value - min_delta) > float32(best)


def plateau_step(
    state: Plateau,
    value: float,
    learning_rate: float,
    *,
    factor: float,
    patience: int,
    min_delta: float,
    min_lr: float,
    lower_is_better: bool,
) -> float:
    """One epoch end of ``keras.callbacks.ReduceLROnPlateau`` (cooldown 0); updates ``state``, returns the new rate.

    As keras/src/callbacks/reduce_lr_on_plateau.py: an improvement resets ``wait``; otherwise
    ``wait`` grows and, on reaching ``patience``, the rate becomes ``max(lr * factor, min_lr)`` if
    the rate (a float32 there) is above float32 ``min_lr``, and ``wait`` restarts only if it did.
    """
    if improved(value, state.best, min_delta, lower_is_better):
        state.best, state.wait = value, 0
        return learning_rate
    state.wait += 1
    current = float32(learning_rate)  # Keras reads the rate back from its float32 variable
    if state.wait < patience or not current > float32(min_lr):
        return learning_rate
    state.wait = 0
    return shortest_float32(max(current * factor, min_lr))
