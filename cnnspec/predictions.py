"""What ``cnnspec predict`` shows for each task: the best classes, a mask PNG, or the predicted values.

``describe(spec, output, labels, ...)`` turns a batch of model outputs (channels-last) into one row per
input: a dict for ``--json`` and a line for the terminal. Masks are written as single-channel PNGs whose
pixel values are the class indices (what ``folder:`` data reads back as masks).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write_bytes


def mask_png(mask: np.ndarray) -> bytes:
    """A class mask (H, W) as an 8-bit greyscale PNG of class indices (16-bit above 255 classes)."""
    import io

    from PIL import Image

    image = (
        Image.fromarray(mask.astype(np.uint8)) if mask.max(initial=0) < 256 else Image.fromarray(mask.astype(np.int32))
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _file_name(label: str) -> str:
    """``dir/cat.png`` -> ``cat``; ``arrays.npy[3]`` -> ``arrays_3``: a name for the mask of that input."""
    match = re.fullmatch(r"(.*)\[(\d+)\]", label)
    stem = Path(match.group(1) if match else label).stem
    return f"{stem}_{match.group(2)}" if match else stem


def _unique_names(labels: list[str]) -> list[str]:
    """A file name per input; two inputs of the same name (a/x.png, b/x.png) keep both files."""
    used: set[str] = set()
    names = []
    for label in labels:
        name = _file_name(label)
        while name in used:
            name += "_"
        used.add(name)
        names.append(name)
    return names


def _names(spec: Any, names: list[str] | None, count: int) -> list[str]:
    given = names if names and len(names) == count else spec.class_names
    return list(given) if given and len(given) == count else [str(i) for i in range(count)]


def _segmentation(spec, output, labels, names, masks_dir: Path, top: int) -> list[tuple[dict, str]]:
    masks = spec.predicted_classes(output)
    count = spec.num_classes if spec.target_kind == "classes" else 2
    names = _names(spec, names, count) if count > 2 or spec.target_kind == "classes" else ["background", "foreground"]
    rows = []
    for label, mask, name in zip(labels, masks, _unique_names(labels)):
        path = masks_dir / f"{name}.png"
        atomic_write_bytes(path, mask_png(mask))
        shares = {names[c]: float((mask == c).mean()) for c in range(count)}
        shown = sorted(((share, n) for n, share in shares.items() if share > 0), reverse=True)[:top]
        line = f"{label}: mask {path} (" + ", ".join(f"{n} {share:.1%}" for share, n in shown) + ")"
        rows.append(({"input": label, "mask": str(path), "pixels": shares}, line))
    return rows


def _regression(spec, output, labels, names, masks_dir: Path, top: int) -> list[tuple[dict, str]]:
    rows = []
    if output.ndim == 2:  # one value per output
        names = _names(spec, names, output.shape[1])
        for label, values in zip(labels, output):
            line = f"{label}: " + ", ".join(f"{n} {v:.4g}" for n, v in zip(names, values))
            rows.append(({"input": label, "values": {n: float(v) for n, v in zip(names, values)}}, line))
        return rows
    for label, values, name in zip(labels, output, _unique_names(labels)):  # a map of values: written as .npy
        path = masks_dir / f"{name}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, values.astype(np.float32))
        rows.append(({"input": label, "values_file": str(path)}, f"{label}: values {list(values.shape)} in {path}"))
    return rows


DESCRIBERS = {"segmentation": _segmentation, "regression": _regression}


def describe(spec: Any, output: np.ndarray, labels: list[str], names: list[str] | None, masks_dir: Path, top: int):
    """(json row, line) per input for a segmentation or regression ``spec``'s channels-last ``output``."""
    return DESCRIBERS[spec.task](spec, output, labels, names, masks_dir, top)
