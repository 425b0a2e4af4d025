"""The tolerance rule: float32 rounding passes at every magnitude, a wrong value fails at every magnitude."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.numerics import ATOL, layer_tolerances, magnitude, max_difference, tolerance_for

MAGNITUDES = [1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3]


def _sum_two_ways(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Window sums of float32 values near ``scale`` in two orders, as two correct frameworks compute them."""
    cells = np.random.default_rng(0).uniform(0.5, 1.0, (1000, 9)).astype(np.float32) * np.float32(scale)
    forward = np.zeros(1000, np.float32)
    for k in range(9):
        forward += cells[:, k]
    backward = np.zeros(1000, np.float32)
    for k in reversed(range(9)):
        backward += cells[:, k]
    return forward, backward


@pytest.mark.parametrize("scale", MAGNITUDES)
def test_float32_rounding_is_within_the_tolerance_at_every_magnitude(scale):
    forward, backward = _sum_two_ways(scale)
    assert max_difference(forward, backward) <= tolerance_for(forward)
    if scale >= 100:  # the case an absolute 1e-5 got wrong
        assert max_difference(forward, backward) > ATOL


@pytest.mark.parametrize("scale", MAGNITUDES)
def test_a_real_error_fails_at_every_magnitude(scale):
    forward, _ = _sum_two_ways(scale)
    wrong = forward.copy()
    wrong[3] += max(1e-3 * abs(float(forward[3])), 3 * ATOL)  # 0.1% off, or 3 atol for small values
    assert max_difference(wrong, forward) > tolerance_for(forward)


def test_below_one_the_rule_is_absolute_and_above_it_relative():
    assert tolerance_for(np.float32([1e-3])) == ATOL
    assert tolerance_for(np.float32([1.0])) == ATOL
    assert tolerance_for(np.float32([-250.0, 3.0])) == pytest.approx(250 * ATOL)


def test_a_layer_inherits_the_largest_magnitude_before_it():
    """A small output computed from large intermediates carries their rounding."""
    x = np.float32([[0.5]])
    outputs = [np.float32([[300.0]]), np.float32([[2.0]]), np.float32([[0.1]])]
    assert layer_tolerances(x, outputs) == pytest.approx([300 * ATOL] * 3)
    assert layer_tolerances(x, [np.float32([[0.1]]), np.float32([[4.0]])]) == pytest.approx([ATOL, 4 * ATOL])


def test_differences_in_shape_or_nonfinite_values_are_infinite():
    assert max_difference(np.zeros(3), np.zeros(4)) == np.inf
    assert max_difference(np.float32([np.nan, 1]), np.float32([0, 1])) == np.inf
    assert max_difference(np.float32([np.inf, 1]), np.float32([2, 1])) == np.inf
    assert max_difference(np.float32([np.nan, np.inf]), np.float32([np.nan, np.inf])) == 0.0
    assert magnitude(np.float32([np.inf, -3.0])) == 3.0
