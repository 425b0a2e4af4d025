"""PyTorch modules with Keras's meaning, and the builder table spec type -> module.

Tensors are NCHW inside (what PyTorch's kernels are fastest at); every padding
amount comes from ``cnnspec.shapes`` so nothing here re-derives a shape.
Builders share one signature: ``(layer spec, input shape (H, W, C) or (F,)) -> nn.Module``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnspec.shapes import real_cell_counts, spatial_windows

# -- activations (Keras 3 definitions and constants) --------------------------------------
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
LEAKY_RELU_SLOPE = 0.2  # Keras's default; torch's is 0.01


class Softmax(nn.Module):
    """Softmax over channels: NCHW dim 1 is Keras's last axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


class Lambda(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str):
        super().__init__()
        self.fn, self.label = fn, name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.label


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "elu": lambda: nn.ELU(alpha=1.0),
    "selu": lambda: Lambda(lambda x: SELU_SCALE * F.elu(x, SELU_ALPHA), "selu"),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": Softmax,
    "softplus": lambda: Lambda(lambda x: torch.logaddexp(x, torch.zeros_like(x)), "softplus"),
    "swish": nn.SiLU,
    "gelu": lambda: nn.GELU(approximate="none"),
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_RELU_SLOPE),
}


# -- layers -------------------------------------------------------------------------------
def _pads(layer: Any, input_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom), F.pad's order, from the shape checker's windows."""
    rows, cols = spatial_windows(layer, input_shape)
    return cols.pad_before, cols.pad_after, rows.pad_before, rows.pad_after


def _symmetric(pads: tuple[int, int, int, int]) -> bool:
    return pads[0] == pads[1] and pads[2] == pads[3]


class Conv2d(nn.Conv2d):
    """Keras Conv2D: ``same`` padding may be uneven (extra cell bottom/right); pad explicitly then."""

    def __init__(self, layer: Any, input_shape: tuple[int, ...]):
        pads = _pads(layer, input_shape)
        even = _symmetric(pads)
        super().__init__(
            input_shape[2], layer.filters, tuple(layer.kernel_size), stride=tuple(layer.strides),
            padding=(pads[2], pads[0]) if even else 0, dilation=tuple(layer.dilation_rate), bias=layer.use_bias,
        )  # fmt: skip
        self.explicit_pads = None if even else pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.explicit_pads is not None:
            x = F.pad(x, self.explicit_pads)
        return super().forward(x)


class MaxPool2d(nn.Module):
    """Keras MaxPooling2D; padded cells are -inf so they never win."""

    def __init__(self, layer: Any, input_shape: tuple[int, ...]):
        super().__init__()
        self.kernel, self.stride = tuple(layer.pool_size), tuple(layer.strides)
        self.pads = _pads(layer, input_shape)
        # torch pads internally only evenly and up to half the window
        self.builtin = _symmetric(self.pads) and self.pads[0] <= self.kernel[1] // 2 and self.pads[2] <= self.kernel[0] // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.builtin:
            return F.max_pool2d(x, self.kernel, self.stride, padding=(self.pads[2], self.pads[0]))
        return F.max_pool2d(F.pad(x, self.pads, value=-math.inf), self.kernel, self.stride)


class MinPool2d(MaxPool2d):
    """Minimum of each window: -max(-x); padding never wins."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -super().forward(-x)


class SumPool2d(nn.Module):
    """Sum of each window's real cells: zero padding, then a sum (avg_pool with divisor 1)."""

    def __init__(self, layer: Any, input_shape: tuple[int, ...]):
        super().__init__()
        self.kernel, self.stride = tuple(layer.pool_size), tuple(layer.strides)
        self.pads = _pads(layer, input_shape)

    def window_sums(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads)
        return F.avg_pool2d(x, self.kernel, self.stride, divisor_override=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.window_sums(x)


class AvgPool2d(SumPool2d):
    """Keras AveragePooling2D: ``same`` padding divides by the number of real cells."""

    def __init__(self, layer: Any, input_shape: tuple[int, ...]):
        super().__init__(layer, input_shape)
        counts = torch.tensor(real_cell_counts(layer, input_shape), dtype=torch.float32)
        self.register_buffer("cells", counts[None, None], persistent=False)  # (1, 1, out_h, out_w)
        self.uniform = not any(self.pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uniform:
            return F.avg_pool2d(x, self.kernel, self.stride)
        return self.window_sums(x) / self.cells.to(x.dtype)


class BatchNorm(nn.Module):
    """Keras BatchNormalization over channels (NCHW dim 1, or the features of a flat input).

    Always computed in float32 (as Keras does under mixed precision).

    Training normalises with the biased batch variance (as both frameworks do) but,
    unlike ``nn.BatchNorm2d``, also updates the moving variance with the biased one,
    and with Keras's momentum (moving = moving * momentum + batch * (1 - momentum)).
    """

    def __init__(self, layer: Any, input_shape: tuple[int, ...]):
        super().__init__()
        channels = input_shape[-1]
        self.momentum, self.eps = layer.momentum, layer.epsilon
        self.weight = nn.Parameter(torch.ones(channels)) if layer.scale else None
        self.bias = nn.Parameter(torch.zeros(channels)) if layer.center else None
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                dims = [0, *range(2, x.dim())]
                var, mean = torch.var_mean(x.float(), dim=dims, correction=0)
                self.running_mean.mul_(self.momentum).add_(mean * (1.0 - self.momentum))
                self.running_var.mul_(self.momentum).add_(var * (1.0 - self.momentum))
            return F.batch_norm(x.float(), None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(x.float(), self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class Flatten(nn.Module):
    """Keras order (H, W, C): move channels last before flattening an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        return x.reshape(x.shape[0], -1)


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class GlobalMaxPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3))


def _with_activation(core: nn.Module, activation: str) -> list[nn.Module]:
    return [core] if activation == "linear" else [core, ACTIVATIONS[activation]()]


Builder = Callable[[Any, tuple], "list[nn.Module]"]
BUILDERS: dict[str, Builder] = {
    "conv2d": lambda layer, shape: _with_activation(Conv2d(layer, shape), layer.activation),
    "max_pool2d": lambda layer, shape: [MaxPool2d(layer, shape)],
    "avg_pool2d": lambda layer, shape: [AvgPool2d(layer, shape)],
    "min_pool2d": lambda layer, shape: [MinPool2d(layer, shape)],
    "sum_pool2d": lambda layer, shape: [SumPool2d(layer, shape)],
    "global_avg_pool2d": lambda layer, shape: [GlobalAvgPool()],
    "global_max_pool2d": lambda layer, shape: [GlobalMaxPool()],
    "batch_norm": lambda layer, shape: [BatchNorm(layer, shape)],
    "dropout": lambda layer, shape: [nn.Dropout(layer.rate)],
    "flatten": lambda layer, shape: [Flatten()],
    "dense": lambda layer, shape: _with_activation(nn.Linear(shape[0], layer.units, bias=layer.use_bias), layer.activation),
    "activation": lambda layer, shape: [ACTIVATIONS[layer.activation]()],
}
