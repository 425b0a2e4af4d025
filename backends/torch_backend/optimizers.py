"""Keras 3's optimizers for PyTorch, update for update.

torch's built-ins differ from Keras in small ways that add up: Adam puts epsilon
after the bias correction, RMSprop puts it outside the square root, SGD momentum
keeps a different buffer. These follow keras/src/optimizers/*.py ``update_step``
line by line, so one step from the same weights and gradients gives the same
weights in both frameworks.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from cnnspec.spec import SGD, Adam, RMSprop


class KerasAdam(torch.optim.Optimizer):
    """m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= lr_t * m / (sqrt(v) + eps),
    lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)."""

    def __init__(self, params, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> None:
        for group in self.param_groups:
            b1, b2, eps = group["beta_1"], group["beta_2"], group["epsilon"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"]
                alpha = group["lr"] * torch.sqrt(1 - b2**t) / (1 - b1**t)
                g, m, v = p.grad, state["m"], state["v"]
                m.add_((g - m) * (1 - b1))
                v.add_((g * g - v) * (1 - b2))
                p.sub_(m * alpha / (v.sqrt() + eps))


class KerasSGD(torch.optim.Optimizer):
    """m = momentum * m - lr * g; w += m (nesterov: w += momentum * m - lr * g)."""

    def __init__(self, params, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> None:
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if mu == 0:
                    p.sub_(g * lr)
                    continue
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m = state["m"]
                m.copy_(m * mu - g * lr)
                p.add_(m * mu - g * lr if group["nesterov"] else m)


class KerasRMSprop(torch.optim.Optimizer):
    """v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps) (centered: v - avg^2 + eps);
    with momentum: m = momentum m + increment; w -= m."""

    def __init__(self, params, lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
        super().__init__(params, dict(lr=lr, rho=rho, momentum=momentum, epsilon=epsilon, centered=centered))

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> None:
        for group in self.param_groups:
            lr, rho, mu, eps = group["lr"], group["rho"], group["momentum"], group["epsilon"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g, state = p.grad, self.state[p]
                if not state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    if group["centered"]:
                        state["average_grad"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    if mu > 0:
                        state["momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                velocity = state["velocity"]
                velocity.copy_(rho * velocity + (1 - rho) * (g * g))
                if group["centered"]:
                    average = state["average_grad"]
                    average.copy_(rho * average + (1 - rho) * g)
                    denominator = velocity - average * average + eps
                else:
                    denominator = velocity + eps
                increment = lr * g / denominator.sqrt()
                if mu > 0:
                    state["momentum"].copy_(mu * state["momentum"] + increment)
                    p.sub_(state["momentum"])
                else:
                    p.sub_(increment)


OPTIMIZERS: dict[str, Callable[[Any, Any], torch.optim.Optimizer]] = {
    "adam": lambda params, o: KerasAdam(params, o.learning_rate, o.beta_1, o.beta_2, o.epsilon),
    "sgd": lambda params, o: KerasSGD(params, o.learning_rate, o.momentum, o.nesterov),
    "rmsprop": lambda params, o: KerasRMSprop(params, o.learning_rate, o.rho, o.momentum, o.epsilon, o.centered),
}


def make_optimizer(params, spec: Adam | SGD | RMSprop, learning_rate: float | None = None) -> torch.optim.Optimizer:
    """The Keras-exact optimizer a spec's ``training.optimizer`` names."""
    if learning_rate is not None:
        spec = spec.model_copy(update={"learning_rate": learning_rate})
    return OPTIMIZERS[spec.type](params, spec)
