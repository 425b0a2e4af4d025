"""Keras 3's optimizers for PyTorch, update for update.

torch's built-ins differ from Keras in small ways that add up: Adam puts epsilon
after the bias correction, RMSprop puts it outside the square root, SGD momentum
keeps a different buffer. These follow keras/src/optimizers/*.py ``update_step``
line by line, so one step from the same weights and gradients gives the same
weights in both frameworks; ``KerasOptimizer`` adds what Keras's base optimizer
does around each update (iterations, schedules, weight decay).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from cnnspec.spec import OptimizerSpec

from .scalars import factor

Schedule = Callable[[int], float]  # optimizer step -> learning rate


def _with_grads(group: dict) -> list[torch.Tensor]:
    return [p for p in group["params"] if p.grad is not None]


def _multiplier(params: list[torch.Tensor]) -> Callable[[float], float | torch.Tensor]:
    """How to pass a number that multiplies ``params``-shaped tensors to the foreach ops (``scalars.factor``:
    the same products, a cheaper call); parameters of mixed types take the float itself."""
    if len({p.dtype for p in params}) == 1:
        return lambda value: factor(value, params[0])
    return lambda value: value


def _slots(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], *names: str) -> list[list[torch.Tensor]]:
    """Per-parameter state tensors (zeros at first use), one list per slot name."""
    for p in params:
        state = optimizer.state[p]
        for name in names:
            if name not in state:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return [[optimizer.state[p][name] for p in params] for name in names]


class KerasOptimizer(torch.optim.Optimizer):
    """What Keras 3's base optimizer does around every update (keras/src/optimizers/base_optimizer.py ``apply``).

    It counts ``iterations`` (Keras's step counter, kept in the first parameter's state so checkpoints
    carry it), reads the learning rate at that count (a constant, settable by ReduceLROnPlateau, or
    ``schedule(iterations)``), applies decoupled weight decay ``w -= w * weight_decay * lr`` to every
    parameter with a gradient *before* the update (``_apply_weight_decay``; Keras excludes nothing
    unless told to), runs the subclass's update, then counts the step.
    """

    def __init__(self, params, defaults: dict, weight_decay: float | None = None, schedule: Schedule | None = None):
        super().__init__(params, {**defaults, "weight_decay": weight_decay})
        self.schedule = schedule

    def iterations(self) -> int:
        """Steps taken so far (Keras's ``optimizer.iterations``)."""
        first = self.param_groups[0]["params"][0]
        return int(self.state[first].get("step", 0))

    def current_lr(self, group: dict | None = None) -> float:
        """The learning rate the next step uses."""
        if self.schedule is not None:
            return self.schedule(self.iterations())
        return (group or self.param_groups[0])["lr"]

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> None:
        for group in self.param_groups:
            params = _with_grads(group)
            if not params:
                continue
            lr = self.current_lr(group)
            if group["weight_decay"] is not None:
                scalar = _multiplier(params)
                decay = torch._foreach_mul(params, scalar(group["weight_decay"]))
                torch._foreach_mul_(decay, scalar(lr))
                torch._foreach_sub_(params, decay)
            self.update(group, params, [p.grad for p in params], lr, self.iterations() + 1)
        first = self.state[self.param_groups[0]["params"][0]]
        first["step"] = first.get("step", torch.zeros((), dtype=torch.int64)) + 1

    def update(self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor], lr: float, t: int) -> None:
        """One Keras ``update_step`` for all ``params`` at learning rate ``lr``; ``t`` = iterations + 1."""
        raise NotImplementedError


# The updates use torch._foreach_* (one kernel launch per op for all parameters,
# as torch's own optimizers do) in the exact order of Keras's arithmetic.
class KerasAdam(KerasOptimizer):
    """m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= m * lr_t / (sqrt(v) + eps),
    lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t). Keras's AdamW is this with ``weight_decay`` set."""

    def __init__(self, params, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, schedule=None):
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon), weight_decay, schedule)

    def update(self, group, params, grads, lr, t):
        b1, b2, eps = group["beta_1"], group["beta_2"], group["epsilon"]
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m, v = _slots(self, params, "m", "v")
        scalar = _multiplier(params)
        delta = torch._foreach_sub(grads, m)
        torch._foreach_mul_(delta, scalar(1 - b1))
        torch._foreach_add_(m, delta)
        delta = torch._foreach_mul(grads, grads)
        torch._foreach_sub_(delta, v)
        torch._foreach_mul_(delta, scalar(1 - b2))
        torch._foreach_add_(v, delta)
        denominator = torch._foreach_sqrt(v)
        torch._foreach_add_(denominator, eps)
        update = torch._foreach_mul(m, scalar(alpha))
        torch._foreach_div_(update, denominator)
        torch._foreach_sub_(params, update)


class KerasSGD(KerasOptimizer):
    """m = momentum * m - lr * g; w += m (nesterov: w += momentum * m - lr * g)."""

    def __init__(self, params, lr=0.01, momentum=0.0, nesterov=False, weight_decay=None, schedule=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov), weight_decay, schedule)

    def update(self, group, params, grads, lr, t):
        mu = group["momentum"]
        scalar = _multiplier(params)
        scaled_grads = torch._foreach_mul(grads, scalar(lr))
        if mu == 0:
            torch._foreach_sub_(params, scaled_grads)
            return
        (m,) = _slots(self, params, "m")
        torch._foreach_mul_(m, scalar(mu))
        torch._foreach_sub_(m, scaled_grads)
        if group["nesterov"]:
            step = torch._foreach_mul(m, scalar(mu))
            torch._foreach_sub_(step, scaled_grads)
            torch._foreach_add_(params, step)
        else:
            torch._foreach_add_(params, m)


class KerasRMSprop(KerasOptimizer):
    """v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps) (centered: v - avg^2 + eps);
    with momentum: m = momentum m + increment; w -= m."""

    def __init__(
        self, params, lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None, schedule=None
    ):
        defaults = dict(lr=lr, rho=rho, momentum=momentum, epsilon=epsilon, centered=centered)
        super().__init__(params, defaults, weight_decay, schedule)

    def update(self, group, params, grads, lr, t):
        rho, mu, eps = group["rho"], group["momentum"], group["epsilon"]
        (velocity,) = _slots(self, params, "velocity")
        scalar = _multiplier(params)
        torch._foreach_mul_(velocity, scalar(rho))
        torch._foreach_add_(velocity, torch._foreach_mul(torch._foreach_mul(grads, grads), scalar(1 - rho)))
        if group["centered"]:
            (average,) = _slots(self, params, "average_grad")
            torch._foreach_mul_(average, scalar(rho))
            torch._foreach_add_(average, torch._foreach_mul(grads, scalar(1 - rho)))
            denominator = torch._foreach_sub(velocity, torch._foreach_mul(average, average))
            torch._foreach_add_(denominator, eps)
        else:
            denominator = torch._foreach_add(velocity, eps)
        increment = torch._foreach_mul(grads, scalar(lr))
        torch._foreach_div_(increment, torch._foreach_sqrt(denominator))
        if mu > 0:
            (momentum,) = _slots(self, params, "momentum")
            torch._foreach_mul_(momentum, scalar(mu))
            torch._foreach_add_(momentum, increment)
            torch._foreach_sub_(params, momentum)
        else:
            torch._foreach_sub_(params, increment)


def _around(o: Any) -> dict[str, Any]:
    """The arguments every optimizer shares: the initial (or constant) rate, weight decay, the schedule."""
    schedule = o.schedule
    return {"lr": o.initial_learning_rate, "weight_decay": o.weight_decay, "schedule": schedule and schedule.at}


OPTIMIZERS: dict[str, Callable[[Any, Any], KerasOptimizer]] = {
    "adam": lambda params, o: KerasAdam(params, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon, **_around(o)),
    "adamw": lambda params, o: KerasAdam(params, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon, **_around(o)),
    "sgd": lambda params, o: KerasSGD(params, momentum=o.momentum, nesterov=o.nesterov, **_around(o)),
    "rmsprop": lambda params, o: KerasRMSprop(
        params, rho=o.rho, momentum=o.momentum, epsilon=o.epsilon, centered=o.centered, **_around(o)
    ),
}


def make_optimizer(params, spec: OptimizerSpec, learning_rate: float | None = None) -> KerasOptimizer:
    """The Keras-exact optimizer a spec's ``training.optimizer`` names (``learning_rate`` replaces a constant rate)."""
    if learning_rate is not None:
        spec = spec.model_copy(update={"learning_rate": learning_rate})
    return OPTIMIZERS[spec.type](params, spec)
