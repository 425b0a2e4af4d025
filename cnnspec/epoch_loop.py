"""The epoch loop of a training run: epochs, history, the kept weights, early stopping, ReduceLROnPlateau,
NaN handling, checkpoints and resume, test metrics. ``cnnspec.driver.train`` sets a run up and hands it here;
every file it writes goes through ``cnnspec.runs``."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .data import Dataset, is_streamed, validation_split
from .errors import RunError
from .metrics import higher_is_better
from .model import Model
from .placement import Placement
from .progress import EpochProgress
from .runs import read_checkpoint, start_run, started_now, write_checkpoint, write_results
from .schedules import Plateau, plateau_step
from .weights import load_weights, save_weights


class TrainingInterrupted(RunError):
    """Ctrl-C during training; the last finished epoch is kept and can be resumed."""


@dataclass
class TrainResult:
    """What ``train`` returns: the run directory, its history and test metrics, and the trained model
    (a ``cnnspec.model.Model`` holding the kept weights; ``model.native`` is the framework's own object)."""

    run_dir: Path
    history: dict[str, list[float]]
    metrics: dict[str, Any]
    model: Model = field(repr=False)
    stop_reason: str = "finished"

    def _repr_html_(self) -> str:
        """Learning curves and test metrics (Jupyter)."""
        from .display import html_table, png_img
        from .figures import learning_curves

        shown = {key: value for key, value in self.metrics.items() if value is not None}
        rows = [(key, f"{value:.4f}" if isinstance(value, float) else value) for key, value in shown.items()]
        curves = (
            png_img(learning_curves(self.history, self.model.spec.name), "learning curves")
            if self.history.get("loss")
            else ""
        )
        return html_table(("metric", "value"), rows, caption=f"Run {self.run_dir}") + curves


@dataclass
class _Progress:
    """The bookkeeping a checkpoint restores."""

    epoch: int = 0
    best_epoch: int = 0
    best_value: float = math.inf
    monitor_best: float | None = None
    wait: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    # ReduceLROnPlateau: Keras's `best` and `wait`, and the rate it set last (None: never set)
    plateau_best: float | None = None
    plateau_wait: int = 0
    learning_rate: float | None = None


class EpochLoop:
    def __init__(
        self,
        spec,
        settings,
        paths,
        framework,
        dataset: Dataset,
        verbose: bool,
        resuming: bool,
        scalars: Any = None,
        placement: Placement | None = None,
    ):
        self.spec, self.settings, self.paths, self.framework = spec, settings, paths, framework
        self.dataset, self.verbose, self.scalars = dataset, verbose, scalars
        self.placement = placement if placement is not None else Placement()
        self.model = framework.build(spec, seed=settings.seed, precision=settings.precision, placement=self.placement)
        # a schedule is the spec's own; settings.learning_rate (its first value then) only overrides a constant
        constant = settings.learning_rate if spec.training.optimizer.schedule is None else None
        self.trainer = framework.Trainer(
            self.model, spec.training, constant, settings.precision, placement=self.placement
        )
        self.progress = _Progress()
        # the kept (best) weights of this session, in memory: every process has them for the test pass
        self.best_weights: Any = None
        if resuming and paths.state.exists():
            self._restore()
        elif not resuming and self.placement.main:
            start_run(paths, spec, settings, dataset.class_names, started=started_now())

    # -- the epoch loop -------------------------------------------------------------------
    def go(self) -> TrainResult:
        s, p = self.settings, self.progress
        if self.dataset.validation is not None:  # given as such (Keras's validation_data)
            (x_train, y_train), (x_val, y_val) = (self.dataset.x_train, self.dataset.y_train), self.dataset.validation
        else:
            (x_train, y_train), (x_val, y_val) = validation_split(
                self.dataset.x_train, self.dataset.y_train, s.validation_split
            )
        if p.epoch >= s.epochs:
            if self.verbose:
                print(f"{self.paths.root}: already trained for {p.epoch} epochs; nothing to resume")
            return self._finish("finished")
        train_data = self.trainer.prepare(x_train, y_train)
        val_data = self.trainer.prepare(x_val, y_val) if len(x_val) else None
        if self.verbose:
            start = f"resuming after epoch {p.epoch}, " if p.epoch else ""
            source = self.dataset.source + (" (streamed from disk)" if is_streamed(x_train) else "")
            print(
                f"Training {self.spec.name} with {s.backend} on {source}: {len(x_train):,} train / "
                f"{len(x_val):,} validation / {len(self.dataset.x_test):,} test images; {start}"
                f"{s.epochs} epoch{'s' if s.epochs != 1 else ''}, batch {s.batch_size}, {s.precision}"
                + (f" ({s.precision_reason})" if s.precision_reason.startswith("auto") else "")
                + f", on {self.placement.describe()}"
            )
        reason = "finished"
        try:
            for epoch in range(p.epoch + 1, s.epochs + 1):
                reason = self._epoch(epoch, train_data, val_data, len(x_train))
                if reason != "continue":
                    break
            else:
                reason = "finished"
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted; epochs up to {self.progress.epoch} are saved. "
                f"Continue with: cnnspec train --resume {self.paths.root}"
            ) from None
        if reason != "nan":
            return self._finish(reason)
        # Only finite weights are evaluated: the model in memory holds the diverged ones.
        if self.best_weights is not None or self.paths.weights.exists():
            self._finish(reason)
            kept = f"the weights of epoch {p.best_epoch} were kept in {self.paths.weights}"
        else:
            kept = "no epoch ended with finite weights, so none were kept"
        raise RunError(
            f"the loss became NaN or infinite in epoch {p.epoch + 1}; training stopped and {kept}. "
            "Try a lower learning rate."
        )

    def _epoch(self, epoch: int, train_data: Any, val_data: Any, n_train: int) -> str:
        s, p = self.settings, self.progress
        order = np.random.default_rng([s.seed, epoch]).permutation(n_train)
        bar = EpochProgress(epoch, s.epochs, enabled=self.verbose)
        started = time.perf_counter()
        metrics = self.trainer.fit_epoch(train_data, order, s.batch_size, seed=s.seed * 100_003 + epoch, progress=bar)
        if val_data is not None:
            metrics.update({f"val_{k}": v for k, v in self.trainer.evaluate(val_data).items()})
        seconds = time.perf_counter() - started
        if not all(math.isfinite(value) for value in metrics.values()):
            if self.verbose:
                bar.finish(metrics)
            return "nan"
        if self.verbose:
            bar.finish(metrics)
        learning_rate = self.trainer.learning_rate()  # of the epoch's last step, before any plateau reduction
        row = {"epoch": epoch, **metrics, "learning_rate": learning_rate, "seconds": round(seconds, 4)}
        for key, value in row.items():
            p.history.setdefault(key, []).append(value)
        if self.scalars is not None:
            self.scalars.add(epoch, {**metrics, "learning_rate": learning_rate})
        improved = self._keeps(metrics, epoch)  # the same in every process: the metrics are reduced
        stop = self._early_stopping(metrics)
        self._reduce_lr_on_plateau(epoch, metrics, learning_rate)
        p.epoch = epoch
        weights = self.framework.get_weights(self.model)
        if improved:
            self.best_weights = weights
        if self.placement.main:
            self._checkpoint(epoch, improved, weights)
        return "early_stopping" if stop else "continue"

    def _keeps(self, metrics: dict[str, float], epoch: int) -> bool:
        """Whether this epoch's weights are the best so far by ``training.keep_best`` (its training value when
        nothing was held out). ``best_value`` holds the monitored value signed so that lower is better."""
        monitor = self.spec.training.keep_best
        value = metrics.get(monitor, metrics[monitor.removeprefix("val_")])
        score = -value if higher_is_better(monitor) else value
        if score < self.progress.best_value:
            self.progress.best_value, self.progress.best_epoch = score, epoch
            return True
        return False

    def _early_stopping(self, metrics: dict[str, float]) -> bool:
        """Keras's EarlyStopping: wait counts non-improving epochs; stop when it reaches patience."""
        rule = self.spec.training.early_stopping
        if rule is None:
            return False
        p, value = self.progress, metrics[rule.monitor]
        lower_is_better = not higher_is_better(rule.monitor)
        if p.monitor_best is None:
            improved = True
        elif lower_is_better:
            improved = value + rule.min_delta < p.monitor_best
        else:
            improved = value - rule.min_delta > p.monitor_best
        p.wait += 1
        if improved:
            p.monitor_best, p.wait = value, 0
            return False
        stop = p.wait >= rule.patience
        if stop and self.verbose:
            print(f"Early stopping: {rule.monitor} has not improved for {p.wait} epochs")
        return stop

    def _reduce_lr_on_plateau(self, epoch: int, metrics: dict[str, float], learning_rate: float) -> None:
        """Keras's ReduceLROnPlateau at the end of an epoch (``cnnspec.schedules.plateau_step``), for either backend."""
        rule = self.spec.training.reduce_lr_on_plateau
        if rule is None:
            return
        p = self.progress
        state = Plateau(p.plateau_best, p.plateau_wait)
        reduced = plateau_step(
            state,
            metrics[rule.monitor],
            learning_rate,
            factor=rule.factor,
            patience=rule.patience,
            min_delta=rule.min_delta,
            min_lr=rule.min_lr,
            lower_is_better=not higher_is_better(rule.monitor),
        )
        p.plateau_best, p.plateau_wait = state.best, state.wait
        if reduced != learning_rate:
            self.trainer.set_learning_rate(reduced)
            p.learning_rate = reduced
            if self.verbose:
                print(f"Epoch {epoch}: ReduceLROnPlateau reducing learning rate to {reduced}")

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self, epoch: int, improved: bool, weights: Any) -> None:
        p = self.progress
        state = {**asdict(p), "best_value": _finite_or_none(p.best_value)}
        write_checkpoint(self.paths, self.spec, epoch, weights, self.trainer.optimizer_state(), state, improved)

    def _restore(self) -> None:
        checkpoint = read_checkpoint(self.paths, self.spec)
        state = dict(checkpoint.state)
        state["best_value"] = math.inf if state.get("best_value") is None else state["best_value"]
        known = {f.name for f in fields(_Progress)}  # a state.json from another version may hold more
        self.progress = _Progress(**{key: value for key, value in state.items() if key in known})
        self.framework.set_weights(self.model, checkpoint.weights)
        self.trainer.load_optimizer_state(checkpoint.optimizer_state)
        if self.progress.learning_rate is not None:  # torch keeps no rate in its optimizer state
            self.trainer.set_learning_rate(self.progress.learning_rate)
        # the kept weights may lag the state if a kill came between the two writes
        if checkpoint.best_weights is not None:
            self.best_weights = checkpoint.best_weights
            if self.placement.main:
                save_weights(self.paths.weights, self.best_weights, self.spec)

    # -- the end -----------------------------------------------------------------------------
    def _finish(self, reason: str) -> TrainResult:
        paths, p = self.paths, self.progress
        if self.best_weights is not None:
            self.framework.set_weights(self.model, self.best_weights)
        elif paths.weights.exists():
            self.framework.set_weights(self.model, load_weights(paths.weights, self.spec))
        x_test, y_test = self.dataset.x_test, self.dataset.y_test
        # The kept weights are float32 and every later use (evaluate, export, other backends) runs them in
        # float32, so the test metrics do too, whatever precision trained them.
        trainer = self.trainer
        if self.settings.precision != "fp32":
            weights = self.framework.get_weights(self.model)
            model = self.framework.build(self.spec, weights, seed=self.settings.seed, placement=self.placement)
            trainer = self.framework.Trainer(model, self.spec.training, placement=self.placement)
        # arrays given without a test split: no test metrics (None), rather than metrics of something else
        names = ["loss", *self.spec.training.metrics]
        test = trainer.evaluate(trainer.prepare(x_test, y_test)) if len(x_test) else dict.fromkeys(names)
        metrics = {
            **{name: test[name] for name in [*names[1:], "loss"]},
            "n": int(len(x_test)),
            "best_epoch": p.best_epoch,
            "epochs_run": p.epoch,
            "stop_reason": reason,
            "backend": self.settings.backend,
            "data": self.settings.data,
            "train_seconds": round(sum(p.history.get("seconds", [])), 3),
        }
        if self.placement.main:
            write_results(paths, metrics, p.history, title=f"{self.spec.name} ({self.settings.backend})")
        if self.verbose and len(x_test):
            shown = " - ".join(f"{name} {test[name]:.4f}" for name in [*names[1:], "loss"])
            print(f"Test: {shown} ({len(x_test):,} images, weights of epoch {p.best_epoch})")
        if self.verbose:
            print(f"Run saved to {paths.root}")
        return TrainResult(paths.root, p.history, metrics, Model(self.spec, self.settings.backend, self.model), reason)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
