"""Reading and writing specs: YAML, JSON, dicts and ``ModelSpec`` objects.

``load_spec`` is the one entry point; it turns every kind of bad input (a missing
file, a YAML syntax error, a schema error, a shape that does not fit) into a
``SpecError`` whose issues say where the problem is.

>>> spec = load_spec({"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10}]})
>>> spec_to_dict(spec)["layers"][0]
{'type': 'flatten', 'name': 'flatten_0'}
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import SpecError, SpecIssue
from .spec import LAYER_ALIASES, LAYER_CLASSES, OPTIMIZER_CLASSES, EarlyStopping, ModelSpec, TrainingSpec

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
        raise SpecError(issues_from_validation_error(err, document), origin) from None
    except SpecError as err:
        raise SpecError(err.issues, origin) from None


def _safe_name(stem: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "_" for c in stem)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


# -- pydantic errors -> issues that name the layer ----------------------------------
def issues_from_validation_error(err: ValidationError, document: Any) -> list[SpecIssue]:
    """One ``SpecIssue`` per pydantic error, with the layer index, name and field."""
    return [_issue(error, document) for error in err.errors(include_url=False)]


def _issue(error: dict[str, Any], document: Any) -> SpecIssue:
    loc = list(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
        index = loc[1]
        raw = _layer_at(document, index)
        rest = loc[3:] if len(loc) > 2 and loc[2] in LAYER_CLASSES else loc[2:]  # drop the union tag
        field = _dotted(rest) or None
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) and isinstance(raw, dict) and isinstance(raw.get("type"), str):
            name = f"{LAYER_ALIASES.get(raw['type'], raw['type'])}_{index}"
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            field = "type"
        message = _message(kind, error, field, value, known=LAYER_CLASSES, raw=raw)
        return SpecIssue(message, index, name if isinstance(name, str) else None, field, kind, value)
    if "optimizer" in loc[:-1] and loc[loc.index("optimizer") + 1] in OPTIMIZER_CLASSES:
        loc.pop(loc.index("optimizer") + 1)  # drop the union tag
    field = _dotted(loc) or None
    raw = _get(document, loc[:-1]) if loc else None
    return SpecIssue(_message(kind, error, field, value, known=None, raw=raw), None, None, field, kind, value)


def _message(kind: str, error: dict[str, Any], field: str | None, value: Any, known: Any, raw: Any) -> str:
    leaf = field.rsplit(".", 1)[-1] if field else None
    if kind == "extra_forbidden":
        allowed = _allowed_fields(raw)
        close = difflib.get_close_matches(str(leaf), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown field {leaf!r}{hint}"
    if kind == "missing":
        return f"{leaf!r} is required"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        what, choices = ("layer", sorted(LAYER_CLASSES)) if known else ("optimizer", sorted(OPTIMIZER_CLASSES))
        if kind == "union_tag_not_found":
            return f"a {what} needs a 'type', one of: {', '.join(choices)}"
        tag = error.get("ctx", {}).get("tag", value)
        close = difflib.get_close_matches(str(tag), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {what} type {tag!r}{hint}; known types: {', '.join(choices)}"
    if kind == "model_attributes_type" or kind == "model_type":
        return f"expected a mapping of fields, got {_show(value)}"
    msg = error["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return f"{msg[:1].lower()}{msg[1:]}, got {_show(value)}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_fields(raw: Any) -> list[str]:
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        cls = LAYER_CLASSES.get(LAYER_ALIASES.get(raw["type"], raw["type"]))
        if cls is not None:
            return list(cls.model_fields)
    if isinstance(raw, dict) and "layers" in raw:
        return list(ModelSpec.model_fields)
    fields = list(TrainingSpec.model_fields) + list(EarlyStopping.model_fields)
    for cls in OPTIMIZER_CLASSES.values():
        fields += list(cls.model_fields)
    return fields


def _layer_at(document: Any, index: int) -> Any:
    layers = document.get("layers") if isinstance(document, dict) else None
    return layers[index] if isinstance(layers, list) and index < len(layers) else None


def _get(document: Any, loc: list[Any]) -> Any:
    node = document
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _dotted(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- canonical form ------------------------------------------------------------------
def spec_to_dict(spec: ModelSpec) -> dict[str, Any]:
    """Every field, canonical names, lists not tuples; ``load_spec`` of it gives ``spec`` back."""
    data = spec.model_dump(mode="json")
    data["layers"] = [
        {"type": layer["type"], "name": layer["name"], **{k: v for k, v in layer.items() if k not in ("type", "name")}}
        for layer in data["layers"]
    ]
    return data


def dump_spec(spec: ModelSpec, fmt: str = "yaml") -> str:
    """The canonical text of ``spec`` in YAML or JSON."""
    data = spec_to_dict(spec)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
