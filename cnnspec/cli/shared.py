"""The ``cnnspec`` Typer app, and what every command shares: one-line errors, exit codes, warnings.

Thin on purpose: every command calls the Python API, and every framework import
happens inside the command that needs it, so ``cnnspec validate`` and
``cnnspec --help`` never load torch, TensorFlow or ONNX.
Exit codes: 0 ok, 1 invalid input (a ``CnnspecError``), 2 usage.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional

# Pydantic looks for plugins by scanning every installed distribution's metadata
# (~50 ms, a sixth of `cnnspec validate`); the command line has no use for them.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from ..errors import CnnspecError, CnnspecWarning  # noqa: E402

app = typer.Typer(
    name="cnnspec",
    help="Define a CNN once; validate, train, export and run it in PyTorch, Keras and ONNX Runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _worker_rank() -> int | None:
    """This process's rank when torch's launcher started it as one of several (None otherwise)."""
    from ..placement import LAUNCHED_ENV

    if not os.environ.get(LAUNCHED_ENV) or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    return int(os.environ.get("RANK", "0"))


def _fail(message: str) -> typer.Exit:
    rank = _worker_rank()
    typer.echo(f"error: {f'[rank {rank}] ' if rank else ''}{message}", err=True)
    return typer.Exit(1)


def _interrupted(err: Exception) -> typer.Exit:
    """Ctrl-C: one message, from the process the user started (the launcher, when there is one)."""
    from ..placement import LAUNCHER_ENV

    if _worker_rank() is None or (_worker_rank() == 0 and not os.environ.get(LAUNCHER_ENV)):
        typer.echo(f"\n{err}", err=True)
    return typer.Exit(130)


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input ends in one clear message and exit 1, never a traceback."""
    try:
        yield
    except CnnspecError as err:
        raise _fail(str(err)) from None


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"cnnspec {__version__}")
        raise typer.Exit()


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """cnnspec's own warnings as one plain line; anything else as Python shows it."""
    if issubclass(category, CnnspecWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """cnnspec: one spec, every framework, the same outputs."""
    warnings.showwarning = _show_warning
