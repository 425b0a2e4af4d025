"""pydantic's validation errors -> ``SpecIssue``s that name the layer, the field and the fix.

The one place that reads pydantic errors. It walks the error's location through the
model classes themselves (public ``model_fields`` only), so it knows which class a
field belongs to (for "did you mean") and drops the discriminated union's tag from
locations without a table of layer or optimizer types.

>>> from cnnspec.spec import ModelSpec
>>> try:
...     ModelSpec.model_validate({"input_shape": [8, 8, 1], "layers": [{"type": "dense", "unit": 3}]})
... except Exception as err:
...     issue = issues_from_validation_error(err, {"layers": [{"type": "dense", "unit": 3}]}, ModelSpec)[0]
>>> str(issue)
"layer 0 'dense_0' (unit): unknown field 'unit' (did you mean 'units'?)"
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import SpecIssue
from .registry import LAYER_ALIASES


def issues_from_validation_error(err: ValidationError, document: Any, root: type[BaseModel]) -> list[SpecIssue]:
    """One ``SpecIssue`` per pydantic error in validating ``document`` as ``root``."""
    return [_issue(error, document, root) for error in err.errors(include_url=False)]


@dataclass
class _Place:
    """Where an error is: its location without union tags, and the model classes along it."""

    loc: list[Any] = field(default_factory=list)
    owner: type[BaseModel] | None = None  # the class whose field the last part names
    choices: dict[str, type[BaseModel]] | None = None  # an unresolved union at the end: tag -> class


def _walk(root: type[BaseModel], loc: list[Any]) -> _Place:
    place, union = _Place(), None
    current: type[BaseModel] | None = root
    for part in loc:
        if union is not None and isinstance(part, str) and part in union:
            current, union = union[part], None  # a union tag, not part of the user's document
            continue
        place.loc.append(part)
        if isinstance(part, int):
            continue  # an item of a list: its type was found with the list's field
        place.owner = current
        models = _models_in(current.model_fields[part].annotation) if current and part in current.model_fields else []
        current, union = (models[0], None) if len(models) == 1 else (None, _tags(models) if models else None)
    place.choices = union
    return place


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Annotated, Optional, unions and lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    found: list[type[BaseModel]] = []
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple):
        for arg in typing.get_args(annotation):
            found += [m for m in _models_in(arg) if m not in found]
    return found


def _tags(models: list[type[BaseModel]]) -> dict[str, type[BaseModel]] | None:
    tags = {m.model_fields["type"].default: m for m in models if "type" in m.model_fields}
    return tags if len(tags) == len(models) else None


def _issue(error: Any, document: Any, root: type[BaseModel]) -> SpecIssue:
    kind, value = error["type"], error.get("input")
    place = _walk(root, list(error["loc"]))
    loc = place.loc
    in_layer = len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int)
    field_loc = loc[2:] if in_layer else loc
    field_name = _dotted(field_loc) or None
    if kind in ("union_tag_invalid", "union_tag_not_found") and in_layer:
        field_name = "type"
    raw = _get(document, loc[:-1]) if loc else None
    message = _message(kind, error, field_name, value, place, raw)
    if not in_layer:
        return SpecIssue(message, None, None, field_name, kind, value)
    index, layer = loc[1], _get(document, loc[:2])
    name = layer.get("name") if isinstance(layer, dict) else None
    if not isinstance(name, str) and isinstance(layer, dict) and isinstance(layer.get("type"), str):
        name = f"{LAYER_ALIASES.get(layer['type'], layer['type'])}_{index}"
    return SpecIssue(message, index, name if isinstance(name, str) else None, field_name, kind, value)


def _message(kind: str, error: dict[str, Any], field: str | None, value: Any, place: _Place, raw: Any) -> str:
    leaf = field.rsplit(".", 1)[-1] if field else None
    if kind == "extra_forbidden":
        allowed = list(place.owner.model_fields) if place.owner else []
        return f"unknown field {leaf!r}{_did_you_mean(str(leaf), allowed)}"
    if kind == "missing":
        return f"{leaf!r} is required"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field_name = next((str(p) for p in reversed(place.loc) if isinstance(p, str)), "item")
        what = {"layers": "layer"}.get(field_name, field_name)
        choices = sorted(place.choices or {})
        if kind == "union_tag_not_found":
            return f"a {what} needs a 'type', one of: {', '.join(choices)}"
        tag = error.get("ctx", {}).get("tag", value)
        return f"unknown {what} type {tag!r}{_did_you_mean(str(tag), choices)}; known types: {', '.join(choices)}"
    if kind in ("model_attributes_type", "model_type"):
        return f"expected a mapping of fields, got {_show(value)}"
    msg = error["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return f"{msg[:1].lower()}{msg[1:]}, got {_show(value)}"


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _get(document: Any, loc: list[Any]) -> Any:
    node = document
    for part in loc:
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and part < len(node)
        ):
            node = node[part]
        else:
            return None
    return node


def _dotted(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
