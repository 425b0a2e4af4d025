"""The run directory: what a training run leaves behind, and how it is kept safe.

```
DIR/spec.json             the exact spec (canonical form)
DIR/run.json              backend, data source and settings; what --resume reuses
DIR/weights.safetensors   the kept (best) weights, canonical layout
DIR/history.json          per-epoch metrics, Keras History style (dict of lists)
DIR/history.png           loss and metric curves
DIR/metrics.json          test-split metrics of the kept weights
DIR/checkpoint/           state.json + epoch-N weights and optimizer state
```

``checkpoint/state.json`` is the commit point: epoch files are written first
under new names, then state.json is replaced atomically to point at them, so a
kill at any moment leaves the last finished epoch intact.

This module is the one place that writes a run directory (``start_run``, ``write_checkpoint``,
``write_results``: the training driver and ``cnnspec import keras --run`` both call them) and reads it
back: ``load_run`` reads a finished (or interrupted) run as a typed ``Run``:

>>> run = load_run("runs/digits_cnn-torch")                # doctest: +SKIP
>>> run.settings.backend, run.settings.epochs              # doctest: +SKIP
('torch', 10)
>>> dataset = run.dataset()                                # its test data, fitted to the spec  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RunError
from .files import atomic_write_json

if TYPE_CHECKING:
    import numpy as np

    from .data import Dataset
    from .spec import ModelSpec, TrainingSpec
    from .weights import Weights


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


@dataclass
class RunSettings:
    """What a run was asked to do (run.json's ``settings``); ``--resume`` reuses it."""

    backend: str
    data: str
    epochs: int
    batch_size: int
    learning_rate: float  # the constant rate (--lr overrides it); with a schedule, the schedule's first value
    seed: int
    validation_split: float
    precision: str = "fp32"  # what runs: fp32 or bf16 (``auto`` is decided when the run starts)
    precision_reason: str = ""  # why: the hardware facts behind the choice
    resize: bool = False
    stream: bool | None = None  # None: stream idx:/folder: images from disk only when they would not fit in memory
    device: str = "cpu"  # where it trained: cpu, cuda:N (torch), gpu:N (TensorFlow)
    replicas: int = 1  # model copies sharing each global batch: torch processes or Keras devices

    @classmethod
    def from_json(cls, data: dict[str, Any], training: TrainingSpec | None = None) -> RunSettings:
        """Read run.json's ``settings`` object, tolerating run directories older or newer than this code.

        Unknown keys are ignored; missing ones take defaults: backend ``torch``, data ``digits``,
        the newer fields their dataclass defaults (fp32, no resize, ...), and epochs, batch size,
        learning rate, seed and validation split the values of ``training`` (the run's spec's
        ``training`` section, which is what a run without overrides used; default: the spec defaults).
        """
        if not isinstance(data, dict):
            raise RunError(f"run.json's settings must be a JSON object, got {type(data).__name__}")
        if training is None:
            from .spec import TrainingSpec

            training = TrainingSpec()
        defaults: dict[str, Any] = {
            "backend": "torch",
            "data": "digits",
            "epochs": training.epochs,
            "batch_size": training.batch_size,
            "learning_rate": training.optimizer.initial_learning_rate,
            "seed": training.seed,
            "validation_split": training.validation_split,
        }
        known = {f.name for f in fields(cls)}
        return cls(**{**defaults, **{key: value for key, value in data.items() if key in known}})

    def to_json(self) -> dict[str, Any]:
        """The ``settings`` object train writes to run.json."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Run:
    """A run directory read back: its spec, settings, kept weights and class names (``load_run``)."""

    paths: RunPaths
    spec: ModelSpec = field(repr=False)
    settings: RunSettings
    weights: Weights = field(repr=False)
    class_names: list[str] | None = None  # the names of the data's classes when it was trained
    started: str | None = None  # when training started (run.json), for reports

    @property
    def root(self) -> Path:
        return self.paths.root

    def dataset(self, data: Any = None, resize: bool | None = None) -> Dataset:
        """The data to evaluate on: ``data`` (a source name or arrays, as ``train`` takes; default the run's
        own source), fitted to the spec's input shape and classes, resized when ``resize`` (default: as the
        run was trained)."""
        from .data import dataset_from_arrays, fit_to_spec, load_data
        from .errors import DataError

        resize = self.settings.resize if resize is None else resize
        if data is not None and not isinstance(data, str):
            images = dataset_from_arrays(data)
        elif (data or self.settings.data) == "arrays":
            raise DataError(
                f"{self.root} was trained on arrays in memory: pass the test arrays as data=(x, y, x_test, y_test)"
            )
        else:
            images = load_data(data or self.settings.data)
        if len(images.x_test) == 0:
            raise DataError("the data has no test split to evaluate on: give (x_train, y_train, x_test, y_test)")
        return fit_to_spec(images, self.spec, resize=resize)


def load_run(run_dir: str | Path) -> Run:
    """The run in ``run_dir`` (spec, settings, kept weights), each checked.

    A run.json that is missing or lacks newer fields still loads (see ``RunSettings.from_json``);
    missing kept weights are a ``RunError`` (no epoch has finished yet).
    """
    from .load import load_spec
    from .weights import load_weights

    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise RunError(f"{paths.root}: no such run directory")
    spec = load_spec(read_json(paths.spec, "spec"))
    info = read_json(paths.run, "run settings") if paths.run.exists() else {}
    if not isinstance(info, dict):
        raise RunError(f"{paths.run}: unreadable run settings: not a JSON object")
    try:
        settings = RunSettings.from_json(info.get("settings", {}), spec.training)
    except RunError as err:
        raise RunError(f"{paths.run}: {err}") from None
    if not paths.weights.exists():
        raise RunError(f"{paths.root}: no weights.safetensors yet (no epoch has finished)")
    names = info.get("class_names")
    return Run(
        paths,
        spec,
        settings,
        load_weights(paths.weights, spec),
        class_names=list(names) if isinstance(names, list) else None,
        started=info.get("started"),
    )


def default_run_dir(name: str, backend: str, base: Path = Path("runs")) -> Path:
    """runs/<spec>-<backend>, then -2, -3 ... so an earlier run is never overwritten."""
    candidate = base / f"{name}-{backend}"
    suffix = 2
    while candidate.exists() and any(candidate.iterdir()):
        candidate = base / f"{name}-{backend}-{suffix}"
        suffix += 1
    return candidate


# -- writing -------------------------------------------------------------------------------------
def start_run(
    paths: RunPaths, spec: ModelSpec, settings: RunSettings, class_names: list[str] | None, **facts: Any
) -> None:
    """spec.json, then run.json (settings, the spec's hash, versions, ``facts``): what makes a folder a run."""
    from . import __version__
    from .weights import spec_hash

    write_json(paths.spec, spec.to_dict())
    write_json(paths.run, {
        "settings": settings.to_json(), "spec_hash": spec_hash(spec), "cnnspec": __version__,
        "python": platform.python_version(), **facts, "class_names": class_names,
    })  # fmt: skip


def started_now() -> str:
    """run.json's ``started``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_checkpoint(
    paths: RunPaths,
    spec: ModelSpec,
    epoch: int,
    weights: Weights,
    optimizer_state: dict[str, np.ndarray],
    state: dict[str, Any],
    improved: bool,
) -> None:
    """The epoch's weights and optimizer state under new names, then state.json (the commit point, naming
    ``epoch`` and ``state["best_epoch"]``), then the kept weights when ``improved`` and history.json (the
    state's ``history``); older epochs go last."""
    from .weights import save_arrays, save_weights

    save_weights(paths.epoch_file(epoch, "model"), weights, spec)
    save_arrays(paths.epoch_file(epoch, "optimizer"), optimizer_state)
    write_json(paths.state, {**state, "epoch": epoch})
    if improved:
        save_weights(paths.weights, weights, spec)
    write_json(paths.history, state.get("history", {}))
    for file in paths.checkpoint.glob("epoch-*.safetensors"):
        if int(file.name.split(".")[0].split("-")[1]) not in (epoch, state["best_epoch"]):
            file.unlink(missing_ok=True)


@dataclass
class Checkpoint:
    """What ``read_checkpoint`` finds: state.json, the last epoch's weights and optimizer state, and the
    best epoch's weights (None when a kill came between writing them and the state)."""

    state: dict[str, Any]
    weights: Weights
    optimizer_state: dict[str, np.ndarray]
    best_weights: Weights | None


def read_checkpoint(paths: RunPaths, spec: ModelSpec) -> Checkpoint:
    from .weights import load_arrays, load_weights

    state = read_json(paths.state, "checkpoint state")
    epoch, best = state.get("epoch", 0), paths.epoch_file(state.get("best_epoch", 0), "model")
    return Checkpoint(
        state,
        load_weights(paths.epoch_file(epoch, "model"), spec),
        load_arrays(paths.epoch_file(epoch, "optimizer")),
        load_weights(best, spec) if best.exists() else None,
    )


def write_results(paths: RunPaths, metrics: dict[str, Any], history: dict[str, list[float]], title: str) -> None:
    """metrics.json, history.json and history.png (when there is a history) of a finished run."""
    from .plots import plot_history

    write_json(paths.metrics, metrics)
    write_json(paths.history, history)
    if history.get("loss"):
        plot_history(history, paths.plot, title=title)


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
