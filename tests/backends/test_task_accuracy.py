"""The segmentation and regression example specs train to their stated targets, in torch and in Keras,
on the built-in synthetic shapes set, over several seeds (the claim is on the mean, with its spread shown).

specs/unet_shapes.yaml must reach a mean IoU of at least 0.90 on the test split (issue 25's target);
specs/regression_counts.yaml a mean absolute error of the three counts of at most 0.22.
Measured on a 2-core AMD EPYC (2026-12-07, 14 min for the four tests).
"""

from __future__ import annotations

import statistics

import pytest

import cnnspec

pytestmark = pytest.mark.slow
SEEDS = (0, 1, 2)


def _test_metric(spec: str, data: str, backend: str, metric: str, out) -> list[float]:
    """``spec`` as written, trained once per seed in fp32; the test split's ``metric`` of each run's kept weights."""
    return [
        cnnspec.train(
            spec, backend, data=data, seed=seed, precision="fp32", out=out / f"seed{seed}", verbose=False
        ).metrics[metric]
        for seed in SEEDS
    ]


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_the_unet_segments_the_shapes_set(backend, tmp_path):
    """Measured (seeds 0-2, 15 epochs, the kept weights of the best val_mean_io_u): torch 0.956/0.947/0.951
    (mean 0.952), Keras 0.956/0.957/0.951 (mean 0.955). The target is issue 25's 0.90, far below."""
    pytest.importorskip(f"cnnspec.backends.{backend}_backend")
    scores = _test_metric("specs/unet_shapes.yaml", "shapes", backend, "mean_io_u", tmp_path)
    print(f"{backend} mean IoU per seed {scores}, mean {statistics.mean(scores):.4f}")
    assert statistics.mean(scores) >= 0.90, scores


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_the_regression_spec_counts_the_shapes(backend, tmp_path):
    """Measured (seeds 0-2, 15 epochs, counts 0-3): torch MAE 0.180/0.189/0.159 (mean 0.176), Keras
    0.177/0.175/0.166 (mean 0.173); a seed moves it by about 0.015, so 0.22 is three of those above the means."""
    pytest.importorskip(f"cnnspec.backends.{backend}_backend")
    errors = _test_metric("specs/regression_counts.yaml", "shape_counts", backend, "mae", tmp_path)
    print(f"{backend} MAE per seed {errors}, mean {statistics.mean(errors):.4f}")
    assert statistics.mean(errors) <= 0.22, errors
