"""Keras 3's random augmentation layers as torch modules, on batched NCHW tensors.

Each module draws its per-image parameters from its own ``torch.Generator`` (seeded
by ``seed_augmentations`` from the run seed and the layer index, as the Keras
builder seeds Keras's layer), with Keras's distributions, and is the identity in
eval mode. Resampling follows TensorFlow's ``ImageProjectiveTransformV3``, which
Keras's ``affine_transform`` calls (tensorflow/core/kernels/image/image_ops.h):
output pixel (x, y) reads input point ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``
in pixel-centre coordinates, mapped into the image by the fill mode's rule, then
interpolated bilinearly from its four neighbours (a neighbour outside the image
reads ``fill_value``). The same float32 operations, in the same order, so a fixed
transform gives Keras's pixels to rounding.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnspec.registry import Site

from .layers import BUILDERS, TorchLayer

# -- fill modes: TensorFlow's MapCoordinate, per axis of length n ---------------------------------
# Each takes the continuous input coordinate and returns one inside [0, n - 1], exactly as the
# kernel does (including its quirks: e.g. "wrap" divides by n - 1, so points in (n - 1, n) read
# pixel 0, and "constant" maps nothing: its neighbours outside read fill_value).


def _reflect(c: torch.Tensor, n: int) -> torch.Tensor:
    """(d c b a | a b c d | d c b a): reflected about the outer pixel edges, -0.5 and n - 0.5."""
    if n <= 1:
        return torch.zeros_like(c)
    period = 2 * n
    low = period * torch.trunc(-c / period) + c  # in (-2n, 0]
    low = torch.where(low < -n, low + period, -low - 1)
    high = c - period * torch.trunc(c / period)
    high = torch.where(high >= n, period - high - 1, high)
    return torch.where(c < 0, low, torch.where(c > n - 1, high, c)).clamp(0, n - 1)


def _wrap(c: torch.Tensor, n: int) -> torch.Tensor:
    """(a b c d | a b c d | a b c d), with TensorFlow's step of n - 1 to pick the period."""
    if n <= 1:
        return torch.zeros_like(c)
    low = c + n * (torch.trunc(-c / (n - 1)) + 1)
    high = c - n * torch.trunc(c / (n - 1))
    return torch.where(c < 0, low, torch.where(c > n - 1, high, c)).clamp(0, n - 1)


def _nearest(c: torch.Tensor, n: int) -> torch.Tensor:
    """(a a a a | a b c d | d d d d)."""
    return c.clamp(0, n - 1)


def _constant(c: torch.Tensor, n: int) -> torch.Tensor:
    """(k k k k | a b c d | k k k k): unmapped; reads outside the image give fill_value."""
    return c


FILL_MODES: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "reflect": _reflect,
    "wrap": _wrap,
    "nearest": _nearest,
    "constant": _constant,
}


def affine_transform(images: torch.Tensor, transforms: torch.Tensor, fill_mode: str, fill_value: float) -> torch.Tensor:
    """Keras's ``ops.image.affine_transform`` (bilinear) on NCHW ``images``; ``transforms`` (N, 6) float32
    rows ``[a0, a1, a2, b0, b1, b2]`` map output pixel (x, y) to the input point it reads."""
    n, channels, height, width = images.shape
    xs = torch.arange(width, dtype=torch.float32, device=images.device).view(1, 1, width)
    ys = torch.arange(height, dtype=torch.float32, device=images.device).view(1, height, 1)
    a0, a1, a2, b0, b1, b2 = transforms.to(images.device, torch.float32).view(n, 6, 1, 1).unbind(1)
    mapping = FILL_MODES[fill_mode]
    x = mapping(a0 * xs + a1 * ys + a2, width)  # (N, H, W)
    y = mapping(b0 * xs + b1 * ys + b2, height)
    return _bilinear(images, x, y, fill_value)


def _bilinear(images: torch.Tensor, x: torch.Tensor, y: torch.Tensor, fill_value: float) -> torch.Tensor:
    """TensorFlow's bilinear_interpolation, every image and channel at once.

    The image gets a one-pixel border of ``fill_value`` and each neighbour's index is clamped into
    it, so a neighbour outside the image reads ``fill_value`` (TensorFlow's read_with_fill_value)
    without a mask; one gather fetches all four neighbours. Channels-first, so the per-pixel
    weights broadcast over whole channel planes (30% faster than channels-last rows).
    """
    n, channels, height, width = images.shape
    planes = F.pad(images, (1, 1, 1, 1), value=fill_value).contiguous().view(n, channels, -1)
    x0, y0 = torch.floor(x), torch.floor(y)
    x1, y1 = x0 + 1, y0 + 1
    columns = [xi.clamp(-1, width).long() + 1 for xi in (x0, x1)]
    rows = [yi.clamp(-1, height).long() + 1 for yi in (y0, y1)]
    corners = [row * (width + 2) + column for row in rows for column in columns]  # (y0, x0) (y0, x1) (y1, x0) (y1, x1)
    index = torch.stack(corners, dim=1).view(n, 1, -1).expand(-1, channels, -1)
    v00, v01, v10, v11 = planes.gather(2, index).view(n, channels, 4, height * width).unbind(2)

    def weight(w: torch.Tensor) -> torch.Tensor:
        return w.view(n, 1, -1)

    wx0, wx1 = weight(x1 - x), weight(x - x0)
    # TensorFlow's arithmetic, in its order
    top = wx0 * v00 + wx1 * v01
    bottom = wx0 * v10 + wx1 * v11
    out = weight(y1 - y) * top + weight(y - y0) * bottom
    return out.view(n, channels, height, width).to(images.dtype)


# -- the modules -------------------------------------------------------------------------------------
Transformation = dict[str, torch.Tensor]  # per-image parameters, under the keys Keras's layer uses


class Augmentation(nn.Module):
    """A random layer, split as Keras splits it: ``random_transformation`` draws per-image parameters
    from the module's own generator (``get_random_transformation``), ``transform_images`` applies them.
    In eval mode, the identity."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(0)  # reseeded per run by seed_augmentations

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        """n draws from U(low, high), float32 on the CPU; Keras's formula ``u * (high - low) + low``."""
        return torch.rand(n, generator=self.generator) * (high - low) + low

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform_images(x, self.random_transformation(x)) if self.training else x

    def random_transformation(self, x: torch.Tensor) -> Transformation:
        raise NotImplementedError

    def transform_images(self, x: torch.Tensor, transformation: Transformation) -> torch.Tensor:
        raise NotImplementedError


# RandomFlip's tensor axes per mode (NCHW: 2 is height, 3 is width)
FLIP_DIMS: dict[str, tuple[int, ...]] = {"horizontal": (3,), "vertical": (2,), "horizontal_and_vertical": (2, 3)}


class Flip(Augmentation):
    """Keras RandomFlip: one coin per image, ``u <= 0.5`` flips it (both axes at once in horizontal_and_vertical)."""

    def __init__(self, mode: str):
        super().__init__()
        self.dims = FLIP_DIMS[mode]

    def random_transformation(self, x: torch.Tensor) -> Transformation:
        return {"flips": (self.uniform(len(x), 0.0, 1.0) <= 0.5).view(-1, 1, 1, 1)}

    def transform_images(self, x: torch.Tensor, transformation: Transformation) -> torch.Tensor:
        return torch.where(transformation["flips"].to(x.device), x.flip(self.dims), x)


class Affine(Augmentation):
    """A random affine resampling: subclasses turn their parameters into Keras's per-image matrices."""

    def __init__(self, layer: Any):
        super().__init__()
        self.fill_mode, self.fill_value = layer.fill_mode, float(layer.fill_value)

    def matrices(self, transformation: Transformation, height: int, width: int) -> torch.Tensor:
        """(n, 6) float32 rows [a0, a1, a2, b0, b1, b2]."""
        raise NotImplementedError

    def transform_images(self, x: torch.Tensor, transformation: Transformation) -> torch.Tensor:
        transforms = self.matrices(transformation, x.shape[2], x.shape[3])
        return affine_transform(x, transforms, self.fill_mode, self.fill_value)


def _rows(*columns: torch.Tensor) -> torch.Tensor:
    return torch.stack([column.reshape(-1) for column in columns], dim=1)


class Translation(Affine):
    """Keras RandomTranslation: dy = U(height range) * H, then dx = U(width range) * W; reads (x - dx, y - dy)."""

    def __init__(self, layer: Any):
        super().__init__(layer)
        self.height_range, self.width_range = layer.factor_range("height_factor"), layer.factor_range("width_factor")

    def random_transformation(self, x: torch.Tensor) -> Transformation:
        dy = self.uniform(len(x), *self.height_range) * x.shape[2]
        dx = self.uniform(len(x), *self.width_range) * x.shape[3]
        return {"translations": torch.stack([dx, dy], dim=1)}

    def matrices(self, transformation: Transformation, height: int, width: int) -> torch.Tensor:
        """RandomTranslation._get_translation_matrix."""
        dx, dy = transformation["translations"].float().unbind(1)
        ones, zeros = torch.ones_like(dx), torch.zeros_like(dx)
        return _rows(ones, zeros, -dx, zeros, ones, -dy)


class Rotation(Affine):
    """Keras RandomRotation: angle = U(lower * 360, upper * 360) degrees about the centre ((W-1)/2, (H-1)/2)."""

    def __init__(self, layer: Any):
        super().__init__(layer)
        lower, upper = layer.factor_range("factor")
        self.degrees = (lower * 360.0, upper * 360.0)

    def random_transformation(self, x: torch.Tensor) -> Transformation:
        return {"angle": self.uniform(len(x), *self.degrees)}

    def matrices(self, transformation: Transformation, height: int, width: int) -> torch.Tensor:
        """BaseImagePreprocessingLayer._compute_affine_matrix with no translation, scale 1 and no shear."""
        angle = transformation["angle"].float() * torch.tensor(math.pi / 180.0, dtype=torch.float32)
        cx = 0.5 * torch.tensor(width - 1, dtype=torch.float32)
        cy = 0.5 * torch.tensor(height - 1, dtype=torch.float32)
        cos, sin = torch.cos(angle), torch.sin(angle)
        a0, a1, b0, b1 = cos, -sin, sin, cos
        return _rows(a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1)


class Zoom(Affine):
    """Keras RandomZoom: zy = 1 + U(height range), then zx = 1 + U(width range) (or zy without
    ``width_factor``); output (x, y) reads (zx, zy) times its offset from the centre."""

    def __init__(self, layer: Any):
        super().__init__(layer)
        self.height_range, self.width_range = layer.factor_range("height_factor"), layer.factor_range("width_factor")

    def random_transformation(self, x: torch.Tensor) -> Transformation:
        zy = self.uniform(len(x), 1.0 + self.height_range[0], 1.0 + self.height_range[1]).view(-1, 1)
        if self.width_range is None:
            return {"height_zoom": zy, "width_zoom": zy}
        zx = self.uniform(len(x), 1.0 + self.width_range[0], 1.0 + self.width_range[1]).view(-1, 1)
        return {"height_zoom": zy, "width_zoom": zx}

    def matrices(self, transformation: Transformation, height: int, width: int) -> torch.Tensor:
        """RandomZoom._get_zoom_matrix."""
        zx, zy = transformation["width_zoom"].float().reshape(-1), transformation["height_zoom"].float().reshape(-1)
        zeros = torch.zeros_like(zx)
        x_offset = ((width - 1.0) / 2.0) * (1.0 - zx)
        y_offset = ((height - 1.0) / 2.0) * (1.0 - zy)
        return _rows(zx, zeros, x_offset, zeros, zy, y_offset)


class Contrast(Augmentation):
    """Keras RandomContrast: c = U(1 - lower, 1 + upper) per image; (x - mean) * c + mean per channel,
    clipped to Keras's default value_range."""

    def __init__(self, layer: Any):
        super().__init__()
        lower, upper = layer.factor_range("factor")
        self.factors = (1.0 - lower, 1.0 + upper)
        self.low, self.high = layer.VALUE_RANGE

    def random_transformation(self, x: torch.Tensor) -> Transformation:
        return {"contrast_factor": self.uniform(len(x), *self.factors).view(-1, 1, 1, 1)}

    def transform_images(self, x: torch.Tensor, transformation: Transformation) -> torch.Tensor:
        contrast = transformation["contrast_factor"].to(x.device, x.dtype)
        # RandomContrast._adjust_contrast: the mean over height, then over width, as Keras reduces
        mean = x.mean(dim=2, keepdim=True).mean(dim=3, keepdim=True)
        return ((x - mean) * contrast + mean).clamp(self.low, self.high)


# -- builders and seeding --------------------------------------------------------------------------
MODULES: dict[str, Callable[[Any], Augmentation]] = {
    "random_flip": lambda layer: Flip(layer.mode),
    "random_translation": Translation,
    "random_rotation": Rotation,
    "random_zoom": Zoom,
    "random_contrast": Contrast,
}


@BUILDERS.builds(*MODULES)
def _augmentation(layer: Any, site: Site) -> TorchLayer:
    return TorchLayer([MODULES[layer.type](layer)])


def seed_augmentations(blocks: nn.ModuleList, seed: int) -> None:
    """Seed every random layer from the run seed and its spec index, as Keras's builder gets ``seed * 1000 + index``."""
    for index, block in enumerate(blocks):
        for module in block.modules():
            if isinstance(module, Augmentation):
                module.reseed(seed * 1000 + index)
