"""What every layer type has: a name, its output-shape rule, its canonical variables.

A layer type is one class: it carries every backend-neutral fact about the layer
(as a Keras layer carries ``compute_output_shape``), and ``@register_layer`` makes it
part of the spec language. Parameter counts are derived from the variables, so the
summary and the weights files can never disagree.
"""

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from ..fields import LayerName, Regularizer, SpecModel
from ..shapes import Shape, ShapeViolation, Window, WindowPlan, single_window_plan, window
from .keras_config import keras_config, spec_fields


class LayerSpec(SpecModel):
    """Fields every layer has. ``name`` defaults to ``<type>_<index>``."""

    keras_class: ClassVar[str]  # the Keras layer it means (summary tables; an accepted `type` spelling)
    aliases: ClassVar[tuple[str, ...]] = ()  # more accepted spellings of `type`
    non_trainable: ClassVar[frozenset[str]] = frozenset()  # variables Keras counts as non-trainable
    initializers: ClassVar[dict[str, str]] = {}  # variable -> Keras's initializer, where ``initializer`` guesses wrong
    # has a spatial kernel: the report draws its filters and feature maps, and torch runs it channels-last
    convolutional: ClassVar[bool] = False
    # acts in training only, the identity at inference (random augmentation): exported inference files leave it out
    training_only: ClassVar[bool] = False
    merges: ClassVar[bool] = False  # reads two or more inputs (add, concatenate): its shape rule is merge_shape
    # draws random numbers in training, each framework from its own generator: where and how that is tested
    draws_in_training: ClassVar[str] = ""
    # fields added to the type after specs were written without them: left out of the canonical form (and so of
    # the digest weights files carry) while at their default, so those specs and weights keep theirs
    added_fields: ClassVar[frozenset[str]] = frozenset()
    # -- its Keras side (cnnspec/layers/keras_config.py reads and writes configs from these) --
    keras_classes: ClassVar[tuple[str, ...]] = ()  # more Keras classes meaning this type (cnnspec's own variants)
    # Keras arguments without a field: the values a spec can express (the first is Keras's default)
    keras_fixed: ClassVar[dict[str, tuple[Any, ...]]] = {}
    keras_ignored: ClassVar[frozenset[str]] = frozenset()  # arguments whose value a spec does not need
    # canonical variable -> the attribute of the Keras 3 layer holding it, where the two names differ
    keras_attributes: ClassVar[dict[str, str]] = {}

    type: str
    if TYPE_CHECKING:
        name: str  # a layer inside a ModelSpec always has one (the spec fills in `<type>_<index>`)
    else:
        name: LayerName | None = None
    # the layers it reads, by name ("input": the model input); default: the layer before it
    inputs: Annotated[list[LayerName], Field(min_length=1)] | None = None

    def keras_config(self) -> dict[str, Any]:
        """This layer as the config its Keras class is made from (``keras.layers.<keras_class>.from_config``)."""
        return keras_config(self)

    @classmethod
    def from_keras(
        cls, kind: str, config: dict[str, Any], input_shape: tuple[Any, ...] | None = None
    ) -> dict[str, Any]:
        """A Keras layer's config (class ``kind``, reading ``input_shape`` where the graph says it) as this type's
        spec fields; ``UnsupportedKerasModel`` names the argument a spec cannot express. A class overrides it
        only for a real difference from Keras."""
        return spec_fields(cls, kind, config)

    def output_shape(self, input_shape: Shape) -> Shape:
        """The output shape for a channels-last ``input_shape`` (no batch axis); ``ShapeViolation`` if it does not fit."""
        raise NotImplementedError(f"{type(self).__name__} has no output-shape rule")

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        """Canonical variable name -> Keras-layout shape, in Keras's order (none by default)."""
        return {}

    def initializer(self, variable: str) -> str | float:
        """How Keras starts ``variable``: ``glorot_uniform`` (kernels, fans over the kernel area), ``ones``
        (scales, variances), ``zeros``, or a number (a constant); a class with other variables says so in
        ``initializers`` or here."""
        if variable in self.initializers:
            return self.initializers[variable]
        if variable.endswith("kernel"):
            return "glorot_uniform"
        return "ones" if variable in ("gamma", "moving_variance") else "zeros"

    def final_activation(self) -> str | None:
        """The activation this layer ends in, by name (its ``activation`` field by default): a final softmax or
        sigmoid's input is what Keras's cross-entropy reads as logits."""
        activation = getattr(self, "activation", None)
        return activation if isinstance(activation, str) else None

    def filter_variable(self) -> str | None:
        """The canonical variable holding its spatial filters (kh, kw, in, out-or-multiplier), for pictures."""
        return next(
            (name for name in self.variables((1, 1, 1)) if name.endswith("kernel") and name != "pointwise_kernel"), None
        )

    def regularizers(self) -> dict[str, Regularizer]:
        """Canonical variable -> the regularizer its loss term uses (only variables that have one)."""
        return {}

    def param_counts(self, input_shape: Shape) -> tuple[int, int]:
        """(trainable, non-trainable) parameters, as Keras's ``count_params()`` splits them."""
        trainable = frozen = 0
        for variable, shape in self.variables(input_shape).items():
            if variable in self.non_trainable:
                frozen += math.prod(shape)
            else:
                trainable += math.prod(shape)
        return trainable, frozen


def needs_image(layer: LayerSpec, shape: Shape) -> None:
    if len(shape) != 3:
        raise ShapeViolation(
            f"{layer.type} needs a (height, width, channels) input, got {shape}", None, "input_rank", shape
        )


def _fmt(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


# Keras arguments of the layers that read images: only channels-last can be expressed (None: Keras's default)
CHANNELS_LAST: dict[str, tuple[Any, ...]] = {"data_format": ("channels_last", None)}


class WindowedLayer(LayerSpec):
    """A layer that slides a window over height and width (convolutions, pools)."""

    keras_fixed = CHANNELS_LAST

    window_field: ClassVar[str]  # the field holding the window size, for error messages
    window_label: ClassVar[str]  # "kernel" or "pool"

    if TYPE_CHECKING:  # a field of every subclass, declared there (in Keras's argument order)
        padding: str

    @property
    def window_size(self) -> tuple[int, int]:
        return getattr(self, self.window_field)

    @property
    def window_strides(self) -> tuple[int, int]:
        return self.strides  # type: ignore[attr-defined]  # a field of every subclass (pools fill it in)

    @property
    def window_dilation(self) -> tuple[int, int]:
        return (1, 1)

    def windows(self, input_shape: Shape) -> tuple[Window, Window]:
        """The (height, width) windows on ``input_shape`` (H, W, C): output sizes and Keras's padding."""
        return (
            window(input_shape[0], self.window_size[0], self.window_strides[0], self.window_dilation[0], self.padding),
            window(input_shape[1], self.window_size[1], self.window_strides[1], self.window_dilation[1], self.padding),
        )

    def single_window_plan(self, input_shape: Shape) -> WindowPlan:
        """This layer's window computed at stride 1 where it has one output position (see ``single_window_plan``)."""
        return single_window_plan(
            input_shape[:2], self.window_size, self.window_strides, self.window_dilation, self.padding
        )

    def spatial_output(self, shape: Shape) -> tuple[int, int]:
        """Output (height, width); refuses a non-image input or a ``valid`` window larger than it."""
        needs_image(self, shape)
        kernel = self.window_size
        span = tuple((k - 1) * d + 1 for k, d in zip(kernel, self.window_dilation))
        if self.padding == "valid" and (span[0] > shape[0] or span[1] > shape[1]):
            dilated = f" (dilated to {_fmt(span)})" if span != tuple(kernel) else ""
            raise ShapeViolation(
                f"{self.window_label} {_fmt(kernel)}{dilated} is larger than its {_fmt(shape[:2])} input (padding=valid)",
                self.window_field,
                "window_fits_input",
                list(kernel),
            )
        rows, cols = self.windows(shape)
        return rows.size, cols.size
