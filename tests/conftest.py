"""Shared fixtures: the example specs and a quiet, deterministic environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# CI draws the same examples every run (a red build means a change broke something, not a new draw);
# HYPOTHESIS_PROFILE=long explores fresh random examples
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=SPECS, ids=[p.stem for p in SPECS])
def example_spec_path(request: pytest.FixtureRequest) -> Path:
    return request.param
