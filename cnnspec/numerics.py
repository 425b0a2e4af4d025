"""Keras's numeric rules that more than one backend needs, and the one parity tolerance rule.

The backends, the parity command, export verification and the tests all import
these names instead of writing the numbers again. numpy is imported only by the
functions that need it: the command line reads ``ATOL`` without paying for it.

>>> tolerance_for([0.5, -2.0])
2e-05
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import numpy as np

# -- Keras 3 constants ------------------------------------------------------------------
KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): clips probabilities in the cross-entropy
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # keras.activations.selu
LEAKY_RELU_SLOPE = 0.2  # keras.activations.leaky_relu's default (torch's is 0.01)
# Keras's cross-entropy reaches behind a final softmax *or sigmoid* for its input and treats it
# as logits (keras/src/backend/tensorflow/nn.py, `_keras_logits`); other outputs are probabilities,
# renormalised and clipped to [KERAS_EPSILON, 1 - KERAS_EPSILON].
LOGIT_ACTIVATIONS = ("softmax", "sigmoid")

# -- ONNX -------------------------------------------------------------------------------------
# 13: Softmax over one axis (channels); below, it flattens. 25: the newest ONNX Runtime 1.31 runs
# (onnx 1.23 can write up to 28, which the runtime then refuses).
MIN_OPSET, DEFAULT_OPSET, MAX_OPSET = 13, 17, 25

# -- the tolerance rule ---------------------------------------------------------------------
# Two correct float32 implementations of the same layer differ by rounding: each framework
# sums a window or a dot product in its own order. design.md fixes 1e-5 absolute for values
# up to 1. Above 1 an absolute bound is wrong: float32 resolves a value near 100 only to
# 7.6e-6, so a correct sum of nine such cells can differ by more than 1e-5. Rounding errors
# are relative to the largest quantity the computation has carried, not to the (possibly
# small) output: a 3-unit linear layer after a sum pool of size ~100 inherits that pool's
# rounding. So the bound scales with the largest magnitude seen up to that point.
ATOL = 1e-5


def magnitude(*arrays: Any) -> float:
    """The largest finite absolute value in ``arrays`` (0 for empty ones)."""
    import numpy as np

    largest = 0.0
    for array in arrays:
        values = np.abs(np.asarray(array, dtype=np.float64))
        values = values[np.isfinite(values)]
        if values.size:
            largest = max(largest, float(values.max()))
    return largest


def tolerance_for(*references: Any, atol: float = ATOL) -> float:
    """The largest difference that float32 rounding explains, for outputs computed from ``references``.

    ``atol`` for magnitudes up to 1, ``atol`` times the largest magnitude above that.
    """
    return atol * max(1.0, magnitude(*references))


def layer_tolerances(x: np.ndarray, reference_outputs: Iterable[np.ndarray], atol: float = ATOL) -> list[float]:
    """Per layer: the tolerance for the largest magnitude carried from the input up to that layer."""
    scale, tolerances = magnitude(x), []
    for output in reference_outputs:
        scale = max(scale, magnitude(output))
        tolerances.append(atol * max(1.0, scale))
    return tolerances


def max_difference(got: Any, expected: Any) -> float:
    """max |got - expected|; infinite when the shapes differ or only one side is finite."""
    import numpy as np

    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return float("inf")
    if not got.size:
        return 0.0
    same_nonfinite = (got == expected) | (np.isnan(got) & np.isnan(expected))
    with np.errstate(invalid="ignore"):  # inf - inf: handled by same_nonfinite
        difference = np.where(same_nonfinite, 0.0, np.abs(got - expected))
    return float(np.nan_to_num(difference, nan=np.inf, posinf=np.inf).max())
