"""Reading and writing specs: YAML, JSON, dicts and ``ModelSpec`` objects.

``load_spec`` is the one entry point; it turns every kind of bad input (a missing
file, a YAML syntax error, a schema error, a shape that does not fit) into a
``SpecError`` whose issues say where the problem is.

>>> spec = load_spec({"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10}]})
>>> spec_to_dict(spec)["layers"][0]
{'type': 'flatten', 'name': 'flatten_0'}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import SpecError, SpecIssue
from .issues import issues_from_validation_error
from .spec import ModelSpec

SPEC_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
MAX_SPEC_BYTES = 4 * 1024 * 1024  # a spec is a page of text; anything bigger is the wrong file


def load_spec(source: str | Path | dict[str, Any] | ModelSpec) -> ModelSpec:
    """A validated, shape-checked ``ModelSpec`` from a path, a dict, or a spec.

    A file's stem names the model unless the spec has a ``name``.
    """
    if isinstance(source, ModelSpec):
        return source
    if not isinstance(source, (str, Path)):
        return _validate(source, origin=None)  # a dict, or something that is not a spec at all
    path = Path(source)
    document = read_document(path)
    if isinstance(document, dict) and "name" not in document:
        document = {"name": _safe_name(path.stem), **document}
    return _validate(document, origin=str(path))


def read_document(path: Path) -> Any:
    """Parse a YAML or JSON file; errors name the file and the line."""
    fmt = SPEC_SUFFIXES.get(path.suffix.lower(), "yaml")
    try:
        if path.is_dir():
            raise SpecError(SpecIssue("is a directory, not a spec file", rule="file"), str(path))
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(
                SpecIssue(f"is {path.stat().st_size:,} bytes; a spec file is at most {MAX_SPEC_BYTES:,}", rule="file"),
                str(path),
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(SpecIssue("no such file", rule="file"), str(path)) from None
    except PermissionError:
        raise SpecError(SpecIssue("permission denied", rule="file"), str(path)) from None
    except OSError as err:
        raise SpecError(SpecIssue(f"cannot read: {err.strerror or err}", rule="file"), str(path)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SpecError(
            SpecIssue(f"line {line}: not UTF-8 text (is this a spec file?)", rule="encoding"), str(path)
        ) from None
    if "\x00" in text:
        raise SpecError(SpecIssue("binary data, not a spec file", rule="encoding"), str(path))
    return parse_text(text, fmt, str(path))


def parse_text(text: str, fmt: str, origin: str | None = None) -> Any:
    """YAML (safe_load: no arbitrary objects) or JSON text to plain data."""
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            issue = SpecIssue(f"line {err.lineno}, column {err.colno}: invalid JSON: {err.msg}", rule="syntax")
            raise SpecError(issue, origin) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(SpecIssue(f"{where}invalid YAML: {problem}", rule="syntax"), origin) from None


def _validate(document: Any, origin: str | None) -> ModelSpec:
    if not isinstance(document, dict):
        kind = "an empty file" if document is None else type(document).__name__
        issue = SpecIssue(f"a spec is a mapping with input_shape and layers, got {kind}", rule="document")
        raise SpecError(issue, origin)
    try:
        return ModelSpec.model_validate(document)
    except ValidationError as err:
        raise SpecError(issues_from_validation_error(err, document, ModelSpec), origin) from None
    except SpecError as err:
        raise SpecError(err.issues, origin) from None


def _safe_name(stem: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "_" for c in stem)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


# -- canonical form ------------------------------------------------------------------
def spec_to_dict(spec: ModelSpec) -> dict[str, Any]:
    """Every field, canonical names, lists not tuples; ``load_spec`` of it gives ``spec`` back."""
    return spec.to_dict()


def dump_spec(spec: ModelSpec, fmt: str = "yaml") -> str:
    """The canonical text of ``spec`` in YAML or JSON."""
    data = spec_to_dict(spec)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
