"""Keras 3's optimizers for PyTorch, update for update.

torch's built-ins differ from Keras in small ways that add up: Adam puts epsilon
after the bias correction, RMSprop puts it outside the square root, SGD momentum
keeps a different buffer. These follow keras/src/optimizers/*.py ``update_step``
line by line, so one step from the same weights and gradients gives the same
weights in both frameworks.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from cnnspec.spec import OptimizerSpec


def _with_grads(group: dict) -> list[torch.Tensor]:
    return [p for p in group["params"] if p.grad is not None]


def _slots(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], *names: str) -> list[list[torch.Tensor]]:
    """Per-parameter state tensors (zeros at first use), one list per slot name."""
    for p in params:
        state = optimizer.state[p]
        for name in names:
            if name not in state:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return [[optimizer.state[p][name] for p in params] for name in names]


# The updates use torch._foreach_* (one kernel launch per op for all parameters,
# as torch's own optimizers do) in the exact order of Keras's arithmetic.
class KerasAdam(torch.optim.Optimizer):
    """m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= m * lr_t / (sqrt(v) + eps),
    lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)."""

    def __init__(self, params, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> None:
        for group in self.param_groups:
            params = _with_grads(group)
            if not params:
                continue
            b1, b2, eps = group["beta_1"], group["beta_2"], group["epsilon"]
            first = self.state[params[0]]
            first["step"] = first.get("step", torch.zeros((), dtype=torch.float32)) + 1  # Keras's `iterations`
            t = float(first["step"])
            alpha = group["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
            grads = [p.grad for p in params]
            m, v = _slots(self, params, "m", "v")
            delta = torch._foreach_sub(grads, m)
            torch._foreach_mul_(delta, 1 - b1)
            torch._foreach_add_(m, delta)
            delta = torch._foreach_mul(grads, grads)
            torch._foreach_sub_(delta, v)
            torch._foreach_mul_(delta, 1 - b2)
            torch._foreach_add_(v, delta)
            denominator = torch._foreach_sqrt(v)
            torch._foreach_add_(denominator, eps)
            update = torch._foreach_mul(m, alpha)
            torch._foreach_div_(update, denominator)
            torch._foreach_sub_(params, update)


class KerasSGD(torch.optim.Optimizer):
    """m = momentum * m - lr * g; w += m (nesterov: w += momentum * m - lr * g)."""

    def __init__(self, params, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> None:
        for group in self.param_groups:
            params = _with_grads(group)
            if not params:
                continue
            lr, mu = group["lr"], group["momentum"]
            scaled_grads = torch._foreach_mul([p.grad for p in params], lr)
            if mu == 0:
                torch._foreach_sub_(params, scaled_grads)
                continue
            (m,) = _slots(self, params, "m")
            torch._foreach_mul_(m, mu)
            torch._foreach_sub_(m, scaled_grads)
            if group["nesterov"]:
                step = torch._foreach_mul(m, mu)
                torch._foreach_sub_(step, scaled_grads)
                torch._foreach_add_(params, step)
            else:
                torch._foreach_add_(params, m)


class KerasRMSprop(torch.optim.Optimizer):
    """v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps) (centered: v - avg^2 + eps);
    with momentum: m = momentum m + increment; w -= m."""

    def __init__(self, params, lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
        super().__init__(params, dict(lr=lr, rho=rho, momentum=momentum, epsilon=epsilon, centered=centered))

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> None:
        for group in self.param_groups:
            params = _with_grads(group)
            if not params:
                continue
            lr, rho, mu, eps = group["lr"], group["rho"], group["momentum"], group["epsilon"]
            grads = [p.grad for p in params]
            (velocity,) = _slots(self, params, "velocity")
            torch._foreach_mul_(velocity, rho)
            torch._foreach_add_(velocity, torch._foreach_mul(torch._foreach_mul(grads, grads), 1 - rho))
            if group["centered"]:
                (average,) = _slots(self, params, "average_grad")
                torch._foreach_mul_(average, rho)
                torch._foreach_add_(average, torch._foreach_mul(grads, 1 - rho))
                denominator = torch._foreach_sub(velocity, torch._foreach_mul(average, average))
                torch._foreach_add_(denominator, eps)
            else:
                denominator = torch._foreach_add(velocity, eps)
            increment = torch._foreach_mul(grads, lr)
            torch._foreach_div_(increment, torch._foreach_sqrt(denominator))
            if mu > 0:
                (momentum,) = _slots(self, params, "momentum")
                torch._foreach_mul_(momentum, mu)
                torch._foreach_add_(momentum, increment)
                torch._foreach_sub_(params, momentum)
            else:
                torch._foreach_sub_(params, increment)


OPTIMIZERS: dict[str, Callable[[Any, Any], torch.optim.Optimizer]] = {
    "adam": lambda params, o: KerasAdam(params, o.learning_rate, o.beta_1, o.beta_2, o.epsilon),
    "sgd": lambda params, o: KerasSGD(params, o.learning_rate, o.momentum, o.nesterov),
    "rmsprop": lambda params, o: KerasRMSprop(params, o.learning_rate, o.rho, o.momentum, o.epsilon, o.centered),
}


def make_optimizer(params, spec: OptimizerSpec, learning_rate: float | None = None) -> torch.optim.Optimizer:
    """The Keras-exact optimizer a spec's ``training.optimizer`` names."""
    if learning_rate is not None:
        spec = spec.model_copy(update={"learning_rate": learning_rate})
    return OPTIMIZERS[spec.type](params, spec)
