"""Accuracy claims on digits, each over several seeds: a mean with a margin, never one lucky seed.

A single seed is a coin toss: the Keras digits_cnn scores 97.8-98.3% depending
on the seed, and a bf16 run once missed its bound by 2 of 360 images on another
machine. Each claim below is about a mean over ``SEEDS`` (measured means are in
the README); the bf16 claim is a one-sided paired t-test with stated confidence.
"""

from __future__ import annotations

import statistics
import warnings

import pytest

import cnnspec
from cnnspec.hardware import PrecisionWarning

pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2, 3, 4)
SPEC = "specs/digits_cnn.yaml"  # 30 epochs of Adam


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory):
    """accuracy(backend, precision) -> test accuracy per seed; each run trained once per session."""
    runs: dict[tuple[str, str], list[float]] = {}

    def get(backend: str, precision: str) -> list[float]:
        pytest.importorskip(f"cnnspec.backends.{backend}_backend")
        if (backend, precision) not in runs:
            scores = []
            for seed in SEEDS:
                out = tmp_path_factory.mktemp(f"{backend}-{precision}") / f"seed{seed}"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PrecisionWarning)  # emulated bf16 is slow here, not wrong
                    result = cnnspec.train(SPEC, backend, out=out, seed=seed, precision=precision, verbose=False)
                scores.append(result.metrics["accuracy"])
            runs[(backend, precision)] = scores
        return runs[(backend, precision)]

    return get


@pytest.mark.parametrize(("backend", "floor"), [("torch", 0.98), ("keras", 0.975)])
def test_digits_cnn_mean_accuracy_over_seeds(accuracy, backend, floor):
    """Measured means: torch 98.6%, Keras 97.9% (per-seed spread about 0.3 points, so the
    standard error of a 5-seed mean is ~0.12 points: each floor sits 4-5 standard errors below)."""
    scores = accuracy(backend, "fp32")
    assert statistics.mean(scores) >= floor, scores


def test_bf16_loses_less_than_a_point_against_fp32(accuracy):
    """Paired by seed (same initial weights, shuffles and dropout seeds): the one-sided 95% upper confidence
    bound of fp32's lead over bf16 (paired t, 4 degrees of freedom) is below one point, so the data show that
    bf16 loses less than a point; noisy data widen the bound and fail the test, not pass it.

    Measured (torch, a 2-core AMD EPYC where bf16 is emulated): fp32 98.6/98.9/98.3/99.2/97.8%, bf16 98.1/98.9/98.3/98.3/98.9%: a mean lead of
    0.06 points, standard error 0.33, upper bound 0.77 points. Half a point, the claim this test once made,
    is not what five seeds can show: it would take about three times as many."""
    fp32, bf16 = accuracy("torch", "fp32"), accuracy("torch", "bf16")
    losses = [a - b for a, b in zip(fp32, bf16)]
    mean = statistics.mean(losses)
    standard_error = statistics.stdev(losses) / len(losses) ** 0.5
    t_95 = 2.132  # Student's t, 0.95 quantile, 4 degrees of freedom
    assert mean + t_95 * standard_error < 0.01, {"fp32": fp32, "bf16": bf16}
    assert statistics.mean(bf16) >= 0.975, bf16
