"""Which layer and optimizer types exist: filled by decorators, read by everything else.

A layer type is one class (in ``cnnspec.layers``) registered with ``@register_layer``;
the spec's discriminated union, the Keras-name aliases, the public exports and the
JSON Schema are all derived from ``LAYER_CLASSES``, so a new type is listed nowhere else.
This module imports nothing from cnnspec: it sits at the bottom of the import graph.

>>> from cnnspec.spec import ModelSpec  # importing the spec registers every built-in type
>>> LAYER_CLASSES["conv2d"].__name__, LAYER_ALIASES["MaxPooling2D"]
('Conv2D', 'max_pool2d')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

# canonical type name ("conv2d") -> spec class
LAYER_CLASSES: dict[str, type[Any]] = {}
# other accepted names for `type` (Keras class names) -> canonical type name
LAYER_ALIASES: dict[str, str] = {}
OPTIMIZER_CLASSES: dict[str, type[Any]] = {}
OPTIMIZER_ALIASES: dict[str, str] = {}
LOSS_CLASSES: dict[str, type[Any]] = {}
LOSS_ALIASES: dict[str, str] = {}

C = TypeVar("C", bound=type)
# set by cnnspec.spec once it has built its unions from the tables: a later registration could not take effect
SEALED: dict[str, bool] = {"layers": False, "optimizers": False, "losses": False}


def type_name(cls: type[Any]) -> str:
    """The canonical name a spec class answers to: the default of its ``type`` field."""
    default = cls.model_fields["type"].default
    if not isinstance(default, str):
        raise TypeError(f"{cls.__name__} needs a `type: Literal[...] = ...` field to be registered")
    return default


def _register(table: dict[str, type[Any]], aliases: dict[str, str], cls: type[Any], names: tuple[str, ...]) -> None:
    kind = {id(LAYER_CLASSES): "layers", id(OPTIMIZER_CLASSES): "optimizers", id(LOSS_CLASSES): "losses"}[id(table)]
    if SEALED[kind]:
        raise RuntimeError(
            f"{cls.__name__} is registered after cnnspec.spec built its {kind}: register it in a module imported "
            "before cnnspec.spec (as cnnspec.layers does), or it could never be used"
        )
    name = type_name(cls)
    if name in table and table[name] is not cls:
        raise ValueError(f"type {name!r} is registered twice ({table[name].__name__} and {cls.__name__})")
    table[name] = cls
    for alias in names:
        if alias != name:
            if aliases.get(alias, name) != name:
                raise ValueError(f"{cls.__name__}: {alias!r} already names {aliases[alias]!r}")
            aliases[alias] = name


def register_layer(cls: C) -> C:
    """Class decorator: make a ``LayerSpec`` subclass a layer type a spec may use.

    Its Keras class name and its ``aliases`` become accepted spellings of ``type``.
    """
    _register(LAYER_CLASSES, LAYER_ALIASES, cls, (cls.keras_class, *cls.aliases))  # type: ignore[attr-defined]
    return cls


def register_loss(cls: C) -> C:
    """Class decorator: make a loss spec class available as ``training.loss`` (its Keras class name too)."""
    _register(LOSS_CLASSES, LOSS_ALIASES, cls, (cls.keras_class, *cls.aliases))  # type: ignore[attr-defined]
    return cls


def register_optimizer(cls: C) -> C:
    """Class decorator: make an optimizer spec class available as ``training.optimizer``."""
    _register(OPTIMIZER_CLASSES, OPTIMIZER_ALIASES, cls, cls.aliases)  # type: ignore[attr-defined]
    return cls


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Site:
    """Where a layer is built, as every backend's builder sees it: ``builder(layer, site)``.

    ``input_shapes`` are channels-last without the batch axis, one per input (a merge reads several).
    ``seed`` is this layer's own (random layers draw from it). ``inputs`` and ``graph`` are what a
    backend that wires tensors while building passes (ONNX: the input tensor names and the graph).
    """

    index: int
    input_shapes: tuple[tuple[int, ...], ...]
    seed: int = 0
    inputs: tuple[Any, ...] = ()
    graph: Any = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The (first) input's shape."""
        return self.input_shapes[0]

    @property
    def x(self) -> Any:
        """The (first) input, for a builder of a layer that reads one."""
        return self.inputs[0]


class BuilderTable(dict[type, Callable[..., Any]]):
    """One backend's implementations of a registry's types, by spec class: ``@BUILDERS.builds("conv2d", ...)``
    registers a layer builder ``builder(layer, site)`` (``LOSSES.builds(...)`` a loss, and so on). A type is
    named as the spec names it and found through the registry; a second implementation of a type is an
    error, and a lookup of a type without one names the type and the backend."""

    def __init__(self, backend: str, registry: dict[str, type[Any]] | None = None, kind: str = "layer type"):
        super().__init__()
        self.backend, self.kind = backend, kind
        self.registry = LAYER_CLASSES if registry is None else registry

    def builds(self, *type_names: str) -> Callable[[F], F]:
        def register(builder: F) -> F:
            for name in type_names:
                if name not in self.registry:
                    raise ValueError(f"{builder.__name__}: {name!r} is not a registered {self.kind}")
                cls = self.registry[name]
                if cls in self:
                    raise ValueError(
                        f"the {self.backend} backend builds {name!r} twice: {self[cls].__name__} and {builder.__name__}"
                    )
                self[cls] = builder
            return builder

        return register

    def __missing__(self, cls: type) -> Callable[..., Any]:
        raise NotImplementedError(f"the {self.backend} backend has no builder for {self.kind} {type_name(cls)!r}")

    def missing_types(self) -> list[str]:
        """Registered types this backend cannot build."""
        return [name for name, cls in self.registry.items() if cls not in self]


def canonical_type(raw: Any, aliases: dict[str, str]) -> Any:
    """``raw`` with a Keras class name in ``raw['type']`` rewritten to the canonical type name."""
    if isinstance(raw, dict) and isinstance(raw.get("type"), str) and raw["type"] in aliases:
        return {**raw, "type": aliases[raw["type"]]}
    return raw
