"""Weight layouts: Keras's canonical arrays and the (out, in, kh, kw) layout that torch and ONNX share.

Written once here, in numpy, for every backend that is not Keras (Keras layout is the canonical layout):
the torch backend converts when weights move in and out of a module, the ONNX backend when it writes
initializers.

>>> import numpy as np
>>> conv_to_oihw(np.zeros((3, 5, 2, 4))).shape
(4, 2, 3, 5)
"""

from __future__ import annotations

import numpy as np


def conv_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """A Conv2D kernel (kh, kw, in, out) -> (out, in, kh, kw)."""
    return kernel.transpose(3, 2, 0, 1)


def oihw_to_conv(weight: np.ndarray) -> np.ndarray:
    """(out, in, kh, kw) -> a Conv2D kernel (kh, kw, in, out)."""
    return weight.transpose(2, 3, 1, 0)


def depthwise_to_grouped(kernel: np.ndarray) -> np.ndarray:
    """A DepthwiseConv2D kernel (kh, kw, in, mult) -> a grouped convolution's (in * mult, 1, kh, kw).

    Output channel ``c * mult + m`` reads input channel ``c`` with kernel ``[:, :, c, m]``, in both.
    """
    return kernel.reshape(*kernel.shape[:2], -1).transpose(2, 0, 1)[:, None]


def grouped_to_depthwise(weight: np.ndarray, channels: int) -> np.ndarray:
    """(in * mult, 1, kh, kw) -> a DepthwiseConv2D kernel (kh, kw, in, mult), ``channels`` = in."""
    kh, kw = weight.shape[2:]
    return weight[:, 0].transpose(1, 2, 0).reshape(kh, kw, channels, -1)


def dense_to_out_in(kernel: np.ndarray) -> np.ndarray:
    """A Dense kernel (in, out) -> (out, in) (torch's Linear weight, ONNX Gemm with transB=1)."""
    return kernel.T


def out_in_to_dense(weight: np.ndarray) -> np.ndarray:
    """(out, in) -> a Dense kernel (in, out)."""
    return weight.T


# A Conv2DTranspose kernel (kh, kw, filters, in) -> a transposed convolution's (in, filters, kh, kw) (torch's
# ConvTranspose2d weight, ONNX ConvTranspose's W): the same axes as a convolution's.
conv_transpose_to_iohw, iohw_to_conv_transpose = conv_to_oihw, oihw_to_conv
