"""PyTorch's normalizations with Keras's meaning: batch norm (with its synchronised form for several
processes), layer normalization, the Normalization preprocessing layer and LayerScale's per-channel scale.

Tensors are NCHW inside, as in ``modules.py``; the statistics are computed and kept as Keras keeps them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .scalars import factor


class _SynchronizedBatchNorm(torch.autograd.Function):
    """Batch norm in training over a global batch split across processes (what ``nn.SyncBatchNorm``
    does, which runs on CUDA only), with one process's closed-form backward.

    Forward: the per-channel sums and counts are all-reduced, then the centred squares (two passes).
    Backward: the sums of the output gradient and of its product with the normalised input are
    all-reduced, and each process applies batch norm's gradient formula, as torch's kernel does. Every
    per-channel sum is accumulated in float64, as torch's CPU kernel does for float32. (The first
    version composed the statistics from differentiable all-reduces and let autograd differentiate
    them: equal in exact arithmetic, and exact in one process, yet two-process SGD runs parted from
    one-process runs by 0.06 within an epoch; with this formula they agree within 6e-6.)
    Returns the output and, not differentiable, the batch's mean and biased variance.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: Any, bias: Any, eps: float, group: Any) -> Any:  # noqa: ANN401
        import torch.distributed as dist

        dims, shape = [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)
        count = x.new_full((1,), x.numel() // x.shape[1] if x.numel() else 0, dtype=torch.float64)
        totals = torch.cat([x.sum(dims, dtype=torch.float64), count])
        dist.all_reduce(totals, group=group)
        n = totals[-1]
        mean = (totals[:-1] / n).float()
        centred = x - mean.view(shape)
        squares = centred.square().sum(dims, dtype=torch.float64)
        dist.all_reduce(squares, group=group)
        variance = (squares / n).float()
        invstd = torch.rsqrt(variance + eps)
        normalized = centred * invstd.view(shape)
        ctx.save_for_backward(normalized, invstd, weight)
        ctx.n, ctx.group, ctx.has_weight, ctx.has_bias = n, group, weight is not None, bias is not None
        out = normalized * weight.view(shape) if weight is not None else normalized.clone()
        if bias is not None:
            out = out + bias.view(shape)
        ctx.mark_non_differentiable(mean, variance)
        return out, mean, variance

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _mean: Any, _variance: Any) -> Any:  # noqa: ANN401
        import torch.distributed as dist

        normalized, invstd, weight = ctx.saved_tensors
        dims, shape = [0, *range(2, grad.dim())], [1, -1] + [1] * (grad.dim() - 2)
        sum_grad = grad.sum(dims, dtype=torch.float64)
        sum_grad_normalized = (grad * normalized).sum(dims, dtype=torch.float64)
        grad_x = None
        if ctx.needs_input_grad[0]:  # the same on every process: their collectives stay in step
            totals = torch.cat([sum_grad, sum_grad_normalized])
            dist.all_reduce(totals, group=ctx.group)
            mean_grad, mean_grad_normalized = (totals / ctx.n).float().chunk(2)
            scale = invstd * weight if ctx.has_weight else invstd
            grad_x = (grad - mean_grad.view(shape) - normalized * mean_grad_normalized.view(shape)) * scale.view(shape)
        # the parameters' gradients stay this process's own: DistributedDataParallel averages them
        grad_weight = sum_grad_normalized.float() if ctx.has_weight else None
        grad_bias = sum_grad.float() if ctx.has_bias else None
        return grad_x, grad_weight, grad_bias, None, None


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

    # torch.distributed's group when several processes train (``synchronize_batch_norm``): the batch
    # statistics are then those of the global batch, as one process computes them.
    group: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.group is not None:
            return self._synchronized(x)
        if self.training:
            # One pass over x: torch's kernel writes this batch's mean and unbiased variance into fresh
            # buffers (momentum 1 keeps only the new values); the moving statistics are then updated the
            # Keras way, with the biased variance. (Computing the statistics separately cost 30% of a
            # ResNet-20 training step.)
            mean = torch.zeros_like(self.running_mean)
            unbiased = torch.zeros_like(self.running_var)
            out = F.batch_norm(x.float(), mean, unbiased, self.weight, self.bias, True, 1.0, self.eps)
            with torch.no_grad():
                n = x.numel() // x.shape[1]
                moving_mean, moving_var, momentum = self.running_mean, self.running_var, self.momentum
                moving_mean.mul_(factor(momentum, moving_mean)).add_(mean * factor(1.0 - momentum, mean))
                rate = (n - 1) / n * (1.0 - momentum)
                moving_var.mul_(factor(momentum, moving_var)).add_(unbiased * factor(rate, unbiased))
            return out
        return F.batch_norm(
            x.float(), self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )

    def _synchronized(self, x: torch.Tensor) -> torch.Tensor:
        """Batch norm over the global batch split across processes (``_SynchronizedBatchNorm``)."""
        out, mean, variance = _SynchronizedBatchNorm.apply(x.float(), self.weight, self.bias, self.eps, self.group)
        with torch.no_grad():  # Keras's moving statistics, with the biased variance
            self.running_mean.mul_(self.momentum).add_(mean * (1.0 - self.momentum))
            self.running_var.mul_(self.momentum).add_(variance * (1.0 - self.momentum))
        return out


def _per_channel(x: torch.Tensor) -> list[int]:
    """The view that puts a per-channel vector beside ``x`` (NCHW, or a flat input's features)."""
    return [1, -1] + [1] * (x.dim() - 2)


class KerasLayerNorm(nn.Module):
    """Keras LayerNormalization over the channels, Keras's arithmetic: ``x * inv + (beta - mean * inv)``,
    ``inv = gamma / sqrt(variance + epsilon)``, the statistics in float32 over each position's channels."""

    def __init__(self, channels: int, epsilon: float, center: bool, scale: bool):
        super().__init__()
        self.epsilon = epsilon
        self.gamma = nn.Parameter(torch.ones(channels)) if scale else None
        self.beta = nn.Parameter(torch.zeros(channels)) if center else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        mean = x.mean(dim=1, keepdim=True)
        variance = (x - mean).square().mean(dim=1, keepdim=True)
        inv = torch.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma.view(_per_channel(x))
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self.beta.view(_per_channel(x))
        return x * inv + shift


class KerasNormalization(nn.Module):
    """Keras Normalization: ``(x - mean) / max(sqrt(variance), 1e-7)`` per channel; ``mean`` and ``variance`` are
    buffers (the spec's variables, with Keras's ``count``) or constants."""

    def __init__(self, channels: int, mean: Any = None, variance: Any = None):
        super().__init__()
        constant = mean is not None
        for name, value, start in (("mean", mean, 0.0), ("variance", variance, 1.0)):
            values = torch.full((channels,), float(start)) if value is None else torch.tensor(value).expand(channels)
            self.register_buffer(name, values.float().clone(), persistent=not constant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = _per_channel(x)
        return (x - self.mean.view(shape)) / torch.sqrt(self.variance).clamp_min(1e-7).view(shape)


class ChannelScale(nn.Module):
    """ConvNeXt's LayerScale: ``x * gamma``, one learned multiplier per channel."""

    def __init__(self, channels: int, init_values: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(_per_channel(x))
