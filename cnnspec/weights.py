"""Canonical weights: float32 arrays keyed ``"<layer name>/<variable>"`` in Keras layout.

Whatever backend trained a model, its weights are stored this way
(``weights.safetensors``), so they load into any other backend and into a Keras
model built by hand. This module knows the expected names and shapes of a spec,
makes the seeded initial weights (glorot_uniform kernels, zero biases, as Keras),
and reads and writes safetensors files safely (no pickle) and atomically.

>>> sorted(expected_weights(load_spec("specs/mnist_mlp.yaml")))[:2]     # doctest: +SKIP
['dense_1/bias', 'dense_1/kernel']
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import WeightsError
from .files import atomic_write_bytes

if TYPE_CHECKING:
    from .spec import ModelSpec

Weights = dict[str, np.ndarray]


def expected_weights(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Every canonical key of ``spec`` and its Keras-layout shape, in layer order."""
    return {key: shape for key, shape, _ in _variables(spec)}


def _variables(spec: ModelSpec) -> list[tuple[str, tuple[int, ...], str | float]]:
    """(canonical key, Keras-layout shape, Keras's initializer) of every variable, in layer order."""
    report = spec.summary()
    return [
        (f"{layer.name}/{variable}", shape, layer.initializer(variable))
        for layer, info in zip(spec.layers, report.layers)
        for variable, shape in layer.variables(info.input_shape).items()
    ]


def initial_weights(spec: ModelSpec, seed: int = 0) -> Weights:
    """Keras's initial values, as each layer class names them: glorot_uniform kernels, ones for scales and
    variances, zeros for the rest. Made in numpy from ``seed`` so every backend starts a seeded run from the
    same weights."""
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for key, shape, initializer in _variables(spec):
        if initializer == "glorot_uniform":  # over Keras's fans, which include the kernel area
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            weights[key] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
        else:
            value = initializer if isinstance(initializer, float) else 1.0 if initializer == "ones" else 0.0
            weights[key] = np.full(shape, value, np.float32)
    return weights


def random_weights(spec: ModelSpec, seed: int = 0) -> Weights:
    """Glorot kernels plus non-trivial values for everything that starts as zeros (biases, shifts, means:
    N(0, 0.5)) or ones or a constant (scales, variances: uniform in [0.5, 2]), for parity tests."""
    rng = np.random.default_rng(seed)
    weights = initial_weights(spec, seed)
    for key, shape, initializer in _variables(spec):
        if initializer == "zeros":
            weights[key] = rng.normal(0.0, 0.5, shape).astype(np.float32)
        elif initializer == "ones" or isinstance(initializer, float):
            weights[key] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    return weights


def check_weights(spec: ModelSpec, weights: Weights, origin: str = "weights") -> Weights:
    """Names, shapes and finiteness against ``spec``; the error says which tensor is wrong."""
    expected = expected_weights(spec)
    missing = [key for key in expected if key not in weights]
    extra = [key for key in weights if key not in expected]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if extra:
        problems.append(f"unexpected {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
    for key, shape in expected.items():
        if key in weights and tuple(weights[key].shape) != shape:
            problems.append(f"{key} has shape {tuple(weights[key].shape)}, the spec needs {shape}")
    if problems:
        raise WeightsError(f"{origin} do not fit spec '{spec.name}': " + "; ".join(problems))
    for key in expected:
        if not np.all(np.isfinite(weights[key])):
            raise WeightsError(f"{origin}: {key} holds NaN or infinite values")
    return {key: np.require(weights[key], np.float32, "C") for key in expected}  # (a 0-d variable stays 0-d)


def spec_hash(spec: ModelSpec) -> str:
    """A digest of what the weights depend on (input shape and layers, not training settings).

    Optional layer fields that are unset (``None``: no regularizer, ...) are left out, so
    adding such a field to a layer type keeps every existing weights file's digest
    (tests/core/test_weights_compat.py holds digests made before such additions).
    """
    data = spec.to_dict()
    layers = [{key: value for key, value in layer.items() if value is not None} for layer in data["layers"]]
    payload = json.dumps({"input_shape": data["input_shape"], "layers": layers}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def save_weights(path: str | Path, weights: Weights, spec: ModelSpec | None = None) -> None:
    """Write a safetensors file atomically (temporary file, fsync, rename)."""
    from safetensors.numpy import save

    metadata = {"format": "cnnspec-canonical", "layout": "keras"}
    if spec is not None:
        metadata.update(spec_name=spec.name, spec_hash=spec_hash(spec))
    tensors = {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in weights.items()}
    atomic_write_bytes(Path(path), save(tensors, metadata=metadata))


def load_weights(path: str | Path, spec: ModelSpec | None = None) -> Weights:
    """Read a safetensors file; with ``spec``, check it fits (names, shapes, spec hash)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weights file") from None
    except OSError as err:
        raise WeightsError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        weights = load(raw)
        metadata = _metadata(raw)
    except (SafetensorError, ValueError, OverflowError) as err:
        raise WeightsError(f"{path}: not a valid safetensors file (corrupt or truncated?): {err}") from None
    if spec is None:
        return weights
    stored_hash = metadata.get("spec_hash")
    if stored_hash and stored_hash != spec_hash(spec):
        raise WeightsError(
            f"{path}: these weights were made for a different spec "
            f"('{metadata.get('spec_name', '?')}', hash {stored_hash}) than '{spec.name}' (hash {spec_hash(spec)})"
        )
    return check_weights(spec, weights, origin=str(path))


def _metadata(raw: bytes) -> dict[str, str]:
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    return header.get("__metadata__", {}) or {}


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Any named arrays (optimizer state), dtypes kept, written atomically."""
    from safetensors.numpy import save

    # np.require, not ascontiguousarray: that one turns 0-d scalars (step counters) into 1-d
    atomic_write_bytes(Path(path), save({k: np.require(v, requirements="C") for k, v in arrays.items()}))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        return load(Path(path).read_bytes())
    except FileNotFoundError:
        raise WeightsError(f"{path}: missing") from None
    except (OSError, SafetensorError, ValueError) as err:
        raise WeightsError(f"{path}: not a valid safetensors file (corrupt or truncated?): {err}") from None
