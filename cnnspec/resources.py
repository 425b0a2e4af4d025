"""Refuse to train specs that cannot fit in memory, before anything tries to allocate them.

``filters: 1000000000`` is a valid number but not a network any machine can hold;
``cnnspec validate`` and ``train`` estimate what training would need and name the
layer that makes it too big instead of letting a framework die of an out-of-memory
error. Loading a spec does not check this: a model that is too big to *train* here
may still be one this machine can run (an exported ``.onnx`` on a small device).

The limit is the machine's physical memory, or ``CNNSPEC_MAX_MEMORY`` (bytes, or
with a unit: ``64GB``, ``512MB``) when set.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from .errors import SpecError, SpecIssue
from .shapes import format_bytes

if TYPE_CHECKING:
    from .shapes import ShapeReport
    from .spec import ModelSpec

BYTES_PER_VALUE = 4  # float32
# weights + gradients + two optimizer slots (Adam's m and v, RMSprop's centred average and momentum)
COPIES_OF_PARAMETERS = 4
# each activation is kept for the backward pass and has a gradient of its own
COPIES_OF_ACTIVATIONS = 2
UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_size(text: str) -> int:
    """'64GB' -> bytes; plain numbers are bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?B?)\s*", text.upper())
    if not match:
        raise ValueError(f"not a size: {text!r} (use bytes or a unit such as 512MB, 64GB)")
    return int(float(match.group(1)) * UNITS[match.group(2) if match.group(2) != "K" else "KB"])


def memory_limit() -> int:
    configured = os.environ.get("CNNSPEC_MAX_MEMORY")
    if configured:
        try:
            return parse_size(configured)
        except ValueError as err:
            raise SpecError(SpecIssue(f"CNNSPEC_MAX_MEMORY: {err}", rule="resource_limit")) from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 64 * 1024**3


def training_bytes(report: ShapeReport, batch_size: int) -> int:
    """A lower bound on what training needs: parameters and their optimizer state, plus a batch of activations."""
    activations = sum(_elements(layer.output_shape) for layer in report.layers) + _elements(report.input_shape)
    return BYTES_PER_VALUE * (
        COPIES_OF_PARAMETERS * report.total_params + COPIES_OF_ACTIVATIONS * batch_size * activations
    )


def check_resources(spec: ModelSpec, batch_size: int | None = None) -> None:
    """``SpecError`` naming the heaviest layer when training ``spec`` would need more than the memory limit.

    ``batch_size`` defaults to the spec's ``training.batch_size``.
    """
    _check_report(spec.summary(), spec.training.batch_size if batch_size is None else batch_size)


def _check_report(report: ShapeReport, batch_size: int) -> None:
    need, limit = training_bytes(report, batch_size), memory_limit()
    if need <= limit:
        return

    def cost(layer) -> int:
        return COPIES_OF_PARAMETERS * layer.params + COPIES_OF_ACTIVATIONS * batch_size * _elements(layer.output_shape)

    worst = max(report.layers, key=cost)
    message = (
        f"training this spec needs about {format_bytes(need)} (parameters, optimizer state and a batch of {batch_size} "
        f"activations), more than the {format_bytes(limit)} limit; this layer alone needs {format_bytes(BYTES_PER_VALUE * cost(worst))} "
        f"({worst.params:,} params, output {worst.output_shape}). Set CNNSPEC_MAX_MEMORY to raise the limit"
    )
    raise SpecError(SpecIssue(message, worst.index, worst.name, None, "resource_limit", need))


def _elements(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count
