"""The run directory: what a training run leaves behind, and how it is kept safe.

```
DIR/spec.json             the exact spec (canonical form)
DIR/run.json              backend, data source and settings; what --resume reuses
DIR/weights.safetensors   the kept (best) weights, canonical layout
DIR/history.json          per-epoch metrics, Keras History style (dict of lists)
DIR/history.png           loss and accuracy curves
DIR/metrics.json          test-split metrics of the kept weights
DIR/checkpoint/           state.json + epoch-N weights and optimizer state
```

``checkpoint/state.json`` is the commit point: epoch files are written first
under new names, then state.json is replaced atomically to point at them, so a
kill at any moment leaves the last finished epoch intact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RunError
from .files import atomic_write_json


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def run(self) -> Path:
        return self.root / "run.json"

    @property
    def weights(self) -> Path:
        return self.root / "weights.safetensors"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def plot(self) -> Path:
        return self.root / "history.png"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def state(self) -> Path:
        return self.checkpoint / "state.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def epoch_file(self, epoch: int, kind: str) -> Path:
        return self.checkpoint / f"epoch-{epoch:04d}.{kind}.safetensors"


def default_run_dir(name: str, backend: str, base: Path = Path("runs")) -> Path:
    """runs/<spec>-<backend>, then -2, -3 ... so an earlier run is never overwritten."""
    candidate = base / f"{name}-{backend}"
    suffix = 2
    while candidate.exists() and any(candidate.iterdir()):
        candidate = base / f"{name}-{backend}-{suffix}"
        suffix += 1
    return candidate


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path.parent}: no {path.name} ({what}); is this a cnnspec run directory?") from None
    except (OSError, ValueError) as err:
        raise RunError(f"{path}: unreadable {what}: {err}") from None


def write_json(path: Path, data: Any) -> None:
    atomic_write_json(path, data)


class RunLock:
    """One writer per run directory: a second ``cnnspec train`` on it is refused, not interleaved."""

    def __init__(self, paths: RunPaths):
        self.path = paths.lock
        self.held = False

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _alive(owner):
                    raise RunError(f"{self.path.parent} is in use by another cnnspec run (pid {owner})") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            self.held = True
            return self
        raise RunError(f"{self.path.parent}: cannot take the run lock {self.path}")

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().strip() or "0") or None
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc: Any) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
