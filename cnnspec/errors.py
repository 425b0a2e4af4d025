"""Errors a user can act on.

Every refusal cnnspec makes is a ``CnnspecError``: the CLI prints its message and
exits 1, never a traceback. ``SpecError`` carries one ``SpecIssue`` per problem,
each naming where it is (layer index and name, field), which rule it broke and
the value received, so editors and the ``--json`` output can point at it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class CnnspecError(Exception):
    """Base class: bad input the user can fix (exit code 1)."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec. ``layer`` is the index in ``layers`` (None: top level)."""

    message: str
    layer: int | None = None
    name: str | None = None
    field: str | None = None
    rule: str | None = None
    value: Any = None

    def where(self) -> str:
        if self.layer is not None:
            label = f"layer {self.layer}"
            if self.name:
                label += f" '{self.name}'"
            return label
        return self.field or ""

    def __str__(self) -> str:
        if not self.where():
            return self.message
        field = f" ({self.field})" if self.layer is not None and self.field else ""
        return f"{self.where()}{field}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("value")  # values may not be JSON-serialisable; the message quotes them
        return data


class SpecError(CnnspecError):
    """A spec that cannot be used; ``issues`` lists every problem found.

    >>> try:
    ...     load_spec({"input_shape": [8, 8, 1], "layers": [{"type": "dense"}]})
    ... except SpecError as err:
    ...     err.issues[0].field
    'units'
    """

    def __init__(self, issues: list[SpecIssue] | SpecIssue, source: str | None = None):
        self.issues = [issues] if isinstance(issues, SpecIssue) else list(issues)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.source}: " if self.source else ""
        if len(self.issues) == 1:
            return head + str(self.issues[0])
        lines = [f"{head}{len(self.issues)} problems:"]
        lines += [f"  - {issue}" for issue in self.issues]
        return "\n".join(lines)


class DataError(CnnspecError):
    """A data source that cannot be read or does not fit the spec."""


class WeightsError(CnnspecError):
    """Weights that are missing, corrupt, or do not fit the spec."""


class RunError(CnnspecError):
    """A run directory that is missing, incomplete, or in use."""


class BackendUnavailable(CnnspecError):
    """A framework that is not installed; the message names the extra to install."""


class ModelError(CnnspecError):
    """A model object cnnspec cannot use as given: built for another backend, or one whose backend it cannot tell."""


class ModelFileError(CnnspecError):
    """An exported model file that is missing, corrupt, or not cnnspec's."""


class CnnspecWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one line)."""
