"""Training options, declared once.

``TRAIN_OPTIONS`` is the one list of what a training run can be asked: ``cnnspec.train``'s keywords, the
``cnnspec train`` flags (the command's signature is made from it), the command line a launched worker
runs again, and, for the ones a run records, the fields of run.json's settings (``RunSettings``) with how
each takes its value from the spec's ``training`` section when it is not given.

>>> [option.name for option in TRAIN_OPTIONS][:3]
['backend', 'data', 'epochs']
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

# "bf16 only where this machine computes it natively and faster" is hardware.py's rule
PRECISION_HELP = "auto (default: bf16 only where this machine computes it natively and faster), fp32 (exact " \
    "parity with every backend) or bf16."  # fmt: skip


@dataclass(frozen=True)
class TrainOption:
    """One option: its keyword, type (as the command line parses it), default, help and flags.

    ``from_training`` (for options a run records) reads the value from the spec's ``training`` section
    when the option is left as None; ``flags`` are the command line's spellings (``--a/--b`` for a switch
    with an off form).
    """

    name: str
    annotation: Any
    default: Any
    help: str
    flags: tuple[str, ...] = ()
    recorded: bool = False  # a field of RunSettings (run.json's settings)
    from_training: Callable[[Any], Any] | None = None

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return self.flags or ("--" + self.name.replace("_", "-"),)

    def worker_args(self, value: Any) -> list[str]:
        """This option with ``value`` on a command line (nothing when it is the default)."""
        if value == self.default or value is None:
            return []
        on, _, off = self.cli_flags[0].partition("/")
        if self.annotation in (bool, Optional[bool]):
            return [on] if value else [off]
        return [on, str(value)]


TRAIN_OPTIONS: tuple[TrainOption, ...] = (
    TrainOption("backend", str, "torch", "torch or keras.", ("--backend", "-b"), recorded=True),
    TrainOption(
        "data",
        Optional[str],
        None,
        "digits | npz:PATH | idx:DIR | folder:PATH | mnist | fashion_mnist | cifar10 (default: digits; a resumed "
        "run reads its own). Python: arrays too.",
        ("--data", "-d"),
        recorded=True,
    ),
    TrainOption("epochs", Optional[int], None, "Override training.epochs.", recorded=True, from_training=lambda t: t.epochs),
    TrainOption(
        "batch_size", Optional[int], None, "Override training.batch_size.", recorded=True,
        from_training=lambda t: t.batch_size,
    ),
    TrainOption(
        "learning_rate", Optional[float], None, "Override the optimizer's constant learning_rate.", ("--lr",),
        recorded=True, from_training=lambda t: t.optimizer.initial_learning_rate,
    ),
    TrainOption("seed", Optional[int], None, "Override training.seed.", recorded=True, from_training=lambda t: t.seed),
    TrainOption(
        "precision", Optional[str], None, PRECISION_HELP, recorded=True, from_training=lambda t: t.precision
    ),
    TrainOption("out", Optional[Path], None, "Run directory (default runs/<spec>-<backend>).", ("--out", "-o")),
    TrainOption("resume", Optional[Path], None, "Continue the run in this directory (omit SPEC)."),
    TrainOption(
        "resize", bool, False, "Resize images (and convert channels) to the spec's input_shape.", recorded=True
    ),
    TrainOption("follow_symlinks", bool, False, "Let folder: data follow links out of its root."),
    TrainOption(
        "stream",
        Optional[bool],
        None,
        "Read idx:/folder: images from disk a batch at a time (default: only when they would not fit in memory).",
        ("--stream/--no-stream",),
        recorded=True,
    ),
    TrainOption("tensorboard", Optional[Path], None, "Also write TensorBoard scalar logs here."),
    TrainOption("verbose", bool, True, "Progress output (--quiet: none).", ("--verbose/--quiet", " /-q")),
    TrainOption("device", str, "auto", "auto (a GPU when there is one), cpu, cuda or cuda:N."),
    TrainOption(
        "nproc",
        int,
        1,
        "Data-parallel replicas sharing each batch: torch processes (torch.distributed) or Keras devices "
        "(MirroredStrategy).",
    ),
)  # fmt: skip
OPTIONS = {option.name: option for option in TRAIN_OPTIONS}


def check_options(given: dict[str, Any]) -> dict[str, Any]:
    """Every option, ``given`` ones over the defaults; an unknown keyword is a TypeError, as Python's own."""
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise TypeError(f"train() got unexpected keyword arguments: {', '.join(unknown)}")
    return {name: given.get(name, option.default) for name, option in OPTIONS.items()}


def worker_command(spec: Path | None, values: dict[str, Any]) -> list[str]:
    """``cnnspec train`` with ``values`` again, for the launcher's workers (defaults left out)."""
    args = ["train"] + ([str(spec)] if spec is not None else [])
    for name, option in OPTIONS.items():
        args += option.worker_args(values.get(name, option.default))
    return args


def cli_signature(*leading: inspect.Parameter) -> inspect.Signature:
    """``leading`` parameters, then every option as a keyword-only typer option (``cnnspec train``'s)."""
    import typer  # only the command line needs it

    return inspect.Signature([*leading, *(
        inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, annotation=option.annotation,
                          default=typer.Option(option.default, *option.cli_flags, help=option.help))
        for option in TRAIN_OPTIONS
    )])  # fmt: skip


def python_signature(*leading: inspect.Parameter, positional: tuple[str, ...] = ()) -> inspect.Signature:
    """``leading`` parameters, the ``positional`` options (in order), then the rest keyword-only: what
    ``cnnspec.train`` accepts, for ``help()`` and notebooks (it takes them as ``**options``)."""
    first = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=OPTIONS[name].default,
                               annotation=OPTIONS[name].annotation) for name in positional]  # fmt: skip
    rest = [
        inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=option.default, annotation=option.annotation)
        for option in TRAIN_OPTIONS if option.name not in positional
    ]  # fmt: skip
    return inspect.Signature([*leading[:1], *first, *leading[1:], *rest])
