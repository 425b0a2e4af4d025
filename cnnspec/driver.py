"""The backend-neutral training driver: ``cnnspec.train``.

It owns everything that is the same whatever the framework: data and the
validation split, the seeded shuffle, the progress display, history, best
weights, early stopping, NaN handling, checkpoints and resume, and the run
directory. A backend supplies ``build`` and a ``Trainer`` with ``prepare``,
``fit_epoch``, ``evaluate`` and optimizer state in and out.

>>> result = train("specs/digits_cnn.yaml", backend="torch", epochs=2)   # doctest: +SKIP
>>> result.metrics["accuracy"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import inspect
from pathlib import Path
from typing import Any

from .data import Dataset, dataset_from_arrays, fit_to_spec, load_data
from .epoch_loop import EpochLoop, TrainingInterrupted, TrainResult
from .errors import DataError, RunError
from .hardware import PRECISIONS, choose_precision, warn_if_emulated
from .load import load_spec
from .options import OPTIONS, check_options, python_signature
from .placement import LAUNCHED_ENV, Placement, check_device_request, check_nproc
from .resources import check_resources
from .runs import (
    RunLock,
    RunPaths,
    RunSettings,
    default_run_dir,
    read_json,
)
from .spec import ModelSpec

__all__ = ["RunSettings", "TrainResult", "TrainingInterrupted", "train"]  # RunSettings lives in cnnspec.runs


def _settings(spec: ModelSpec, values: dict[str, Any]) -> RunSettings:
    """run.json's settings for a new run: each recorded option as given, or else from the spec's ``training``."""
    recorded = {
        name: values[name] if values[name] is not None or option.from_training is None else option.from_training(spec.training)
        for name, option in OPTIONS.items()
        if option.recorded
    }  # fmt: skip
    if values["learning_rate"] is not None and spec.training.optimizer.schedule is not None:
        raise RunError(
            f"--lr sets a constant learning rate, but this spec's is a {spec.training.optimizer.schedule.type} schedule"
        )
    for flag, value in (("epochs", recorded["epochs"]), ("batch-size", recorded["batch_size"])):
        if value < 1:
            raise RunError(f"--{flag} must be at least 1, got {value}")
    if recorded["learning_rate"] <= 0:
        raise RunError(f"--lr must be positive, got {recorded['learning_rate']}")
    if recorded["precision"] not in PRECISIONS:
        raise RunError(f"--precision must be one of {', '.join(PRECISIONS)}, got {recorded['precision']!r}")
    choice = choose_precision(recorded["precision"], recorded["backend"])
    warn_if_emulated(choice)
    data = values["data"]
    return RunSettings(**{
        **recorded,
        "data": data if isinstance(data, str) else (ARRAYS if data is not None else "digits"),
        "learning_rate": float(recorded["learning_rate"]),
        "validation_split": spec.training.validation_split,
        "precision": choice.precision,
        "precision_reason": choice.reason,
    })  # fmt: skip


def train(
    spec: str | Path | dict | ModelSpec | None = None,
    backend: str = "torch",
    data: Any = None,
    *,
    validation_data: Any = None,
    **options: Any,
) -> TrainResult:
    """Train ``spec`` with ``backend`` on ``data`` and write a run directory.

    ``data``: a source name (default ``digits``; on resume, the run's own), or arrays in
    memory: ``(x_train, y_train)``, ``(x_train, y_train, x_test, y_test)``, a dict with
    those keys, or a ``Dataset`` (without test arrays there are no test metrics).
    ``validation_data=(x_val, y_val)`` replaces ``validation_split``, as in Keras's ``fit``.

    ``options`` are those of ``cnnspec train`` (``cnnspec.options.TRAIN_OPTIONS``, one list for both):
    ``epochs``, ``batch_size``, ``learning_rate``, ``seed``, ``precision`` (left as None: the spec's
    ``training`` values); ``out``; ``resume=DIR`` continues an interrupted run from its last finished epoch
    (``epochs`` may raise the target); ``resize``; ``follow_symlinks``; ``stream``: read ``idx:``/``folder:``
    images from disk a batch at a time (True), never (False), or only when they would not fit in memory
    (None); ``tensorboard=DIR`` also writes scalar logs there; ``verbose``; ``device``: auto (a GPU when the
    framework can use one), cpu, cuda or cuda:N; ``nproc``: data-parallel replicas sharing each global batch
    (Keras: local devices under MirroredStrategy; torch: processes, started by ``cnnspec train --nproc`` or
    torchrun, which run this same function in each).
    """
    values = check_options({**options, "backend": backend, "data": data})
    device, nproc, resume = check_device_request(values["device"]), check_nproc(values["nproc"]), values["resume"]
    if resume is not None:
        paths = RunPaths(Path(resume))
        spec = load_spec(read_json(paths.spec, "spec"))
        info = read_json(paths.run, "run settings")
        recorded = info.get("settings", {}) if isinstance(info, dict) else info
        try:
            settings = RunSettings.from_json(recorded, spec.training)
        except RunError as err:
            raise RunError(f"{paths.run}: {err}") from None
        if values["epochs"] is not None:
            settings.epochs = values["epochs"]
        warn_if_emulated(choose_precision(settings.precision, settings.backend))  # another machine, perhaps
    else:
        if spec is None:
            raise RunError("train needs a spec (or resume=RUN_DIR)")
        spec = load_spec(spec)
        settings = _settings(spec, values)
        paths = None
    check_resources(spec, settings.batch_size)
    from .backends import TRAINING_BACKENDS, training_backend

    if settings.backend not in TRAINING_BACKENDS:
        raise RunError(f"backend {settings.backend!r} cannot train; use one of: {', '.join(TRAINING_BACKENDS)}")
    framework = training_backend(settings.backend)  # a missing framework fails before anything is written
    placement = framework.place(device, nproc)
    try:
        return _train_placed(
            spec, settings, paths, values["out"], framework, placement, data, validation_data,
            values["follow_symlinks"], values["tensorboard"], values["verbose"], resume is not None,
        )  # fmt: skip
    finally:
        placement.close()


def _train_placed(
    spec: ModelSpec,
    settings: RunSettings,
    paths: RunPaths | None,
    out: str | Path | None,
    framework: Any,
    placement: Placement,
    data: Any,
    validation_data: Any,
    follow_symlinks: bool,
    tensorboard: str | Path | None,
    verbose: bool,
    resuming: bool,
) -> TrainResult:
    """``train`` once the backend has placed this process: only rank 0 writes or prints."""
    settings.device, settings.replicas = placement.device, placement.replicas
    if placement.device != "cpu" and not resuming and settings.precision_reason.startswith("auto"):
        # auto's evidence is the CPU's: cnnspec has measured bf16 on CPUs only, so a GPU trains fp32 unless asked
        settings.precision = "fp32"
        settings.precision_reason = (
            f"auto: fp32 on {placement.device}; bf16 there is not measured (ask --precision bf16)"
        )
    verbose = verbose and placement.main
    if paths is None:  # rank 0 picks the directory (runs/<name>-<backend>[-k]) and tells the others
        chosen = Path(out) if out is not None else default_run_dir(spec.name, settings.backend)
        paths = RunPaths(Path(placement.broadcast_bytes(str(chosen).encode() if placement.main else None).decode()))
        if placement.main and (paths.run.exists() or paths.state.exists()):
            raise RunError(
                f"{paths.root} already holds a run; continue it with --resume {paths.root} or pick another --out"
            )
    # a resumed run reads its own source (the CLI passes its default name); only arrays are given again
    images = _dataset(None if resuming and isinstance(data, str) else data, validation_data, settings, follow_symlinks)
    dataset = fit_to_spec(images, spec, resize=settings.resize)
    if placement.main:
        _check_writable(paths.root, spec)
    scalars = None
    if tensorboard is not None and placement.main:
        from .tensorboard import ScalarWriter

        scalars = ScalarWriter(tensorboard)
    try:
        with RunLock(paths) if placement.main else contextlib.nullcontext(), placement.running():
            return EpochLoop(spec, settings, paths, framework, dataset, verbose, resuming, scalars, placement).go()
    finally:
        if scalars is not None:
            scalars.close()


# backends whose replicas are processes (started by torch's launcher) rather than devices of one process
PROCESS_REPLICAS = {"torch"}


def trains_in_processes(backend: str, resume: str | Path | None = None) -> bool:
    """Whether ``--nproc`` means starting processes here: a torch run (the resumed run's own backend),
    in a process that is not already one of the launcher's workers."""
    import os

    if os.environ.get(LAUNCHED_ENV):
        return False
    if resume is not None:
        info = read_json(RunPaths(Path(resume)).run, "run settings")
        recorded = info.get("settings", {}) if isinstance(info, dict) else {}
        backend = recorded.get("backend", "torch") if isinstance(recorded, dict) else "torch"
    return backend in PROCESS_REPLICAS


ARRAYS = "arrays"  # run.json's data for a run trained on arrays in memory


def _dataset(data: Any, validation_data: Any, settings: RunSettings, follow_symlinks: bool) -> Dataset:
    """The run's data: arrays given, or the named source (the run's own on resume)."""
    if data is not None and not isinstance(data, str):
        return dataset_from_arrays(data, validation_data)
    source = data or settings.data
    if source == ARRAYS:
        raise DataError("this run was trained on arrays in memory: pass them again as data=(x_train, y_train, ...)")
    if validation_data is not None:
        raise DataError("validation_data goes with arrays given as data; a named source uses validation_split")
    return load_data(source, follow_symlinks, settings.stream)


# weights.safetensors, two epoch files of weights, and two of optimizer state (up to 3 slots each)
CHECKPOINT_COPIES = 1 + 2 + 2 * 3


def _check_writable(root: Path, spec: ModelSpec) -> None:
    """Fail before training, not after the first epoch: the folder must be writable and have room."""
    import shutil

    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
        free = shutil.disk_usage(root).free
    except OSError as err:
        raise RunError(f"{root}: cannot write the run directory: {err.strerror or err}") from None
    need = 4 * spec.summary().total_params * CHECKPOINT_COPIES + (1 << 20)  # + plots and JSON
    if free < need:
        raise RunError(
            f"{root}: only {free / 2**20:.1f} MB free; checkpoints of this spec need about {need / 2**20:.1f} MB"
        )


train.__signature__ = python_signature(  # type: ignore[attr-defined]  # help() and notebooks show every option
    inspect.Parameter("spec", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
    inspect.Parameter("validation_data", inspect.Parameter.KEYWORD_ONLY, default=None),
    positional=("backend", "data"),
)
