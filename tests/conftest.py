"""Shared fixtures: the example specs and a quiet, deterministic environment."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Under pytest-xdist (make test runs one worker a core) each worker gets its share of the cores, set
# here before any framework starts its thread pools: N workers of all cores each would oversubscribe
# the machine, and torch's and oneDNN's spinning threads then slow everything down. Child processes
# (the CLI tests) inherit the share.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _share = str(max(1, _cores // _workers))
    for _variable in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(_variable, _share)

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


# A test module that builds, trains, imports or exports with Keras: its source names the Keras backend, imports
# keras, or asks for the "keras" backend. Such tests run twice in `make test`, the second time on TensorFlow's
# stock kernels (TF_ENABLE_ONEDNN_OPTS=0, as on CPUs without AVX-512), selected by this mark.
KERAS_USE = re.compile(r"keras_backend|^\s*(?:import|from) keras\b|[\"']keras[\"']", re.MULTILINE)


@functools.cache
def _uses_keras(path: Path) -> bool:
    return bool(KERAS_USE.search(path.read_text()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark Keras-involving tests ``keras``. Tests marked ``cuda`` run where torch can use CUDA; elsewhere they
    are skipped with the reason."""
    for item in items:
        if _uses_keras(Path(item.fspath)):
            item.add_marker(pytest.mark.keras)
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    try:
        from cnnspec.backends.torch_backend.placement import cuda_missing

        missing = cuda_missing()
    except ImportError:
        missing = "torch is not installed (pip install cnnspec[torch])"
    if missing is not None:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=f"needs CUDA: {missing}"))
