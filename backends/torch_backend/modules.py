"""PyTorch modules with Keras's meaning: what the torch builders (``layers.py``) assemble.

Tensors are NCHW inside (what PyTorch's kernels are fastest at); every padding amount comes from the
layer's own ``windows``, so nothing here re-derives a shape.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnspec.layers import WindowedLayer
from cnnspec.numerics import LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE

# -- activations (Keras 3 definitions and constants) --------------------------------------


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
    "relu6": nn.ReLU6,
    "hard_sigmoid": nn.Hardsigmoid,  # relu6(x + 3) / 6, Keras 3's
    "hard_silu": nn.Hardswish,  # x * hard_sigmoid(x)
    "mish": nn.Mish,  # x * tanh(softplus(x))
}


# -- layers -------------------------------------------------------------------------------
def _pads(layer: WindowedLayer, input_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom), F.pad's order, from the layer's own windows."""
    rows, cols = layer.windows(input_shape)
    return cols.pad_before, cols.pad_after, rows.pad_before, rows.pad_after


def _symmetric(pads: tuple[int, int, int, int]) -> bool:
    return pads[0] == pads[1] and pads[2] == pads[3]


try:  # the layout ``F.pad`` gives its output (ATen's ``suggest_memory_format``)
    from torch._prims_common import suggest_memory_format as _suggest_memory_format
except ImportError:  # pragma: no cover - a torch without it pads with F.pad
    _suggest_memory_format = None


class _ZeroPad(torch.autograd.Function):
    """``F.pad(x, pads)`` with zeros (all pads >= 0), the same tensor in the same layout, in one pass
    over ``x`` instead of three: ``F.pad`` fills the whole output, then copies ``x`` in, and its
    backward copies the gradient's interior out (a clone of the crop); here only the border is
    zeroed, and the backward returns the crop as a view (autograd adds it where it is needed)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:  # noqa: ANN401
        left, right, top, bottom = pads
        n, c, h, w = x.shape
        out = torch.empty(
            (n, c, top + h + bottom, left + w + right),
            dtype=x.dtype,
            device=x.device,
            memory_format=_suggest_memory_format(x),
        )
        if top:
            out[:, :, :top].zero_()
        if bottom:
            out[:, :, top + h :].zero_()
        if left:
            out[:, :, top : top + h, :left].zero_()
        if right:
            out[:, :, top : top + h, left + w :].zero_()
        out[:, :, top : top + h, left : left + w].copy_(x)
        ctx.interior = (top, h, left, w)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN401
        top, h, left, w = ctx.interior
        return grad[:, :, top : top + h, left : left + w], None


class Conv2d(nn.Conv2d):
    """Keras Conv2D (and, with ``groups`` = input channels, DepthwiseConv2D): ``same`` padding may be
    uneven (extra cell bottom/right); pad explicitly then (in training with ``_ZeroPad``, which costs
    less than ``F.pad``; compiled, exported or evaluating, with ``F.pad``).

    Along an axis with a single output position the stride is 1 and the input cells the window never
    reads are cropped (``WindowedLayer.single_window_plan``): oneDNN's AVX-512 kernels compute a narrow
    convolution one column wide with a column stride above 1 wrongly.
    """

    def __init__(self, layer: Any, input_shape: tuple[int, ...], out_channels: int, groups: int = 1, bias: bool = True):
        (top, bottom, left, right), ends, strides = layer.single_window_plan(input_shape)
        pads = (left, right, top, bottom)
        even = _symmetric(pads)
        super().__init__(
            input_shape[2],
            out_channels,
            tuple(layer.kernel_size),
            stride=strides,
            padding=(pads[2], pads[0]) if even else 0,
            dilation=tuple(layer.dilation_rate),
            groups=groups,
            bias=bias,
        )
        self.explicit_pads = None if even else pads
        self.crop = None if ends == tuple(input_shape[:2]) else ends

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop is not None:
            x = x[:, :, : self.crop[0], : self.crop[1]]
        if self.explicit_pads is not None:
            if self.training and _suggest_memory_format is not None and not torch.compiler.is_compiling():
                x = _ZeroPad.apply(x, self.explicit_pads)
            else:
                x = F.pad(x, self.explicit_pads)
        return self._conv_forward(x, self.weight, self.bias)


class MaxPool2d(nn.Module):
    """Keras MaxPooling2D; padded cells are -inf so they never win."""

    def __init__(self, layer: Any, input_shape: tuple[int, ...]):
        super().__init__()
        self.kernel, self.stride = tuple(layer.pool_size), tuple(layer.strides)
        self.pads = _pads(layer, input_shape)
        # torch pads internally only evenly and up to half the window
        self.builtin = (
            _symmetric(self.pads) and self.pads[0] <= self.kernel[1] // 2 and self.pads[2] <= self.kernel[0] // 2
        )

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
        counts = torch.tensor(layer.real_cell_counts(input_shape), dtype=torch.float32)
        self.register_buffer("cells", counts[None, None], persistent=False)  # (1, 1, out_h, out_w)
        self.uniform = not any(self.pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uniform:
            return F.avg_pool2d(x, self.kernel, self.stride)
        return self.window_sums(x) / self.cells.to(x.dtype)


class Flatten(nn.Module):
    """Keras order (H, W, C): move channels last before flattening an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        return x.flatten(1)  # (reshape(n, -1) cannot size an empty batch: a process's share may be empty)


class GlobalAvgPool(nn.Module):
    def __init__(self, keepdims: bool = False):
        super().__init__()
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=self.keepdims)


class GlobalMaxPool(GlobalAvgPool):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3), keepdim=self.keepdims)


class Rescale(nn.Module):
    """Keras Rescaling: ``x * scale + offset``."""

    def __init__(self, scale: float, offset: float):
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"


class ZeroPad(nn.Module):
    def __init__(self, pads: tuple[int, int, int, int]):
        super().__init__()
        self.pads = pads  # F.pad's order: (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class Elementwise(nn.Module):
    """Keras's element-wise merges: ``combine`` folded over the inputs in order (broadcasting as Keras does),
    then ``finish`` (Average divides by the number of inputs)."""

    def __init__(self, combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], name: str, mean: bool = False):
        super().__init__()
        self.combine, self.label, self.mean = combine, name, mean

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        total = xs[0]
        for x in xs[1:]:
            total = self.combine(total, x)
        return total / len(xs) if self.mean else total

    def extra_repr(self) -> str:
        return self.label


class ConcatenateChannels(nn.Module):
    """Keras Concatenate on the last axis: channels, NCHW dim 1 (the features of a flat input too)."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class KerasReLU(nn.Module):
    """Keras's ``activations.relu`` with its arguments, term for term (keras/src/activations/activations.py)."""

    def __init__(self, max_value: float | None, negative_slope: float, threshold: float):
        super().__init__()
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope, threshold, top = self.negative_slope, self.threshold, self.max_value
        if slope and top is None and not threshold:
            return F.leaky_relu(x, slope)
        if top == 6 and not slope and not threshold:
            # Keras's own branch for this case: its native relu6, one op (hardtanh), whose gradient is 0 at
            # 0 and at 6 as TensorFlow's Relu6Grad (relu then clamp: 5 ops forward, 6 backward, 3-5x slower)
            return F.relu6(x)
        y = x * (x > threshold).to(x.dtype) if threshold else F.relu(x)
        if top is not None:
            y = y.clamp(0.0, top)
        if not slope:
            return y  # the negative part is read only with a slope
        negative = F.relu(threshold - x) if threshold else F.relu(-x)
        return y - slope * negative

    def extra_repr(self) -> str:
        return f"max_value={self.max_value}, negative_slope={self.negative_slope}, threshold={self.threshold}"


class PReLU(nn.Module):
    """Keras PReLU: ``relu(x) - alpha * relu(-x)``; ``alpha`` is stored channels first, as the activations are."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) - self.alpha * F.relu(-x)


class SoftmaxOver(nn.Module):
    """Softmax over one NCHW dimension that is not the channels' (Keras's Softmax with another axis)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=self.dim)


class ConvTranspose2d(nn.ConvTranspose2d):
    """Keras Conv2DTranspose: the full transposed convolution, then cropped (or zero-extended at the end) to
    Keras's output size by the spec class's ``crops``."""

    def __init__(self, layer: Any, input_shape: tuple[int, ...]):
        super().__init__(
            input_shape[2], layer.filters, tuple(layer.kernel_size), stride=tuple(layer.strides),
            dilation=tuple(layer.dilation_rate), bias=layer.use_bias,
        )  # fmt: skip
        self.crops = layer.crops(input_shape)  # ((top, bottom change), (left, right change))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(x, self.weight, None, self.stride, 0, 0, 1, self.dilation)
        (top, rows), (left, columns) = self.crops
        y = y[:, :, top : y.shape[2] + min(rows, 0), left : y.shape[3] + min(columns, 0)]
        if rows > 0 or columns > 0:
            y = F.pad(y, (0, max(columns, 0), 0, max(rows, 0)))
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class UpSample(nn.Module):
    """Keras UpSampling2D: ``nearest`` repeats each row and column (exact at every factor: torch's nearest
    interpolation reads the wrong source cell at some, 41 and 47 among them); ``bilinear`` is half-pixel
    interpolation, as tf.image.resize."""

    def __init__(self, size: tuple[int, int], interpolation: str):
        super().__init__()
        self.size, self.interpolation = size, interpolation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.interpolation == "nearest":
            return x.repeat_interleave(self.size[0], dim=2).repeat_interleave(self.size[1], dim=3)
        out = (x.shape[2] * self.size[0], x.shape[3] * self.size[1])
        return F.interpolate(x, size=out, mode="bilinear", align_corners=False)


class ReshapeChannelsLast(nn.Module):
    """Keras Reshape: the example's values in channels-last order, laid out as ``target`` (then NCHW again)."""

    def __init__(self, target: tuple[int, ...]):
        super().__init__()
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        y = x.reshape(x.shape[0], *self.target)
        return y.permute(0, 3, 1, 2) if y.dim() == 4 else y


class NoiseShapeDropout(nn.Module):
    """Keras Dropout with ``noise_shape``: one mask of that shape (batch first, None for the input's size,
    in Keras's channels-last order) broadcast over the input, kept values scaled by 1 / (1 - rate)."""

    def __init__(self, rate: float, noise_shape: tuple[int | None, ...]):
        super().__init__()
        self.rate, self.noise_shape = rate, noise_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.rate:
            return x
        keras_order = [x.shape[0], *x.shape[2:], x.shape[1]] if x.dim() == 4 else list(x.shape)
        mask_shape = [size if noise is None else noise for noise, size in zip(self.noise_shape, keras_order)]
        if x.dim() == 4:
            mask_shape = [mask_shape[0], mask_shape[3], mask_shape[1], mask_shape[2]]  # NCHW
        keep = torch.rand(mask_shape, device=x.device) >= self.rate
        return x * keep.to(x.dtype) / (1.0 - self.rate)
