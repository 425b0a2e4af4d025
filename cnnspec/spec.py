"""The spec language: a model is an input shape, registered layers and a training setup.

The vocabulary, argument names and defaults are those of Keras 3, so a spec reads
like the Keras model it means. A ``ModelSpec`` that exists is valid: building one
checks the schema, fills default names and runs the shape checker, and raises
``SpecError`` (never a bare pydantic error) when anything is wrong. It is frozen, and
its summary is computed once, when it is built.

The layer types live in ``cnnspec.layers`` (one registered class each); the union
below is derived from the registry.

>>> spec = ModelSpec(input_shape=(8, 8, 1), layers=[Flatten(), Dense(units=10, activation="softmax")])
>>> spec.layers[1].name
'dense_1'
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from .errors import SpecError, SpecIssue
from .fields import LayerName, PositiveInt, SpecModel
from .layers import *  # noqa: F403  (the layer classes are part of this module's public face)
from .layers import LayerSpec
from .metrics import METRICS
from .registry import LAYER_ALIASES, LAYER_CLASSES, SEALED, canonical_type
from .shapes import INPUT, ShapeReport, infer_shapes
from .training import *  # noqa: F403  (the training setup is part of this module's public face)
from .training import LOGIT_ACTIVATIONS, TrainingSpec

LAYER_TYPES = tuple(LAYER_CLASSES)
SEALED["layers"] = True  # the union below is built now: later registrations could not join it
if TYPE_CHECKING:  # what a type checker can know: some registered LayerSpec
    Layer = LayerSpec
else:  # what pydantic validates: the union of the registered classes, chosen by `type`
    Layer = Annotated[Union[tuple(LAYER_CLASSES.values())], Field(discriminator="type")]


# -- the model -------------------------------------------------------------------
class ModelSpec(SpecModel):
    """A whole network: input shape (H, W, C), layers, training setup.

    >>> ModelSpec(input_shape=(8, 8, 1), layers=[Flatten(), Dense(units=10)]).summary().total_params
    650
    """

    name: LayerName = "model"
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt]
    layers: Annotated[list[Layer], Field(min_length=1)]
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    class_names: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, description="optional: one name per output class, used by reports and predict"
    )
    _report: ShapeReport = PrivateAttr()

    @field_validator("input_shape", mode="before")
    @classmethod
    def _three_dimensions(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) != 3:
            raise ValueError(f"input_shape is [height, width, channels], got {list(value)}")
        return tuple(value) if isinstance(value, list) else value

    @field_validator("layers", mode="before")
    @classmethod
    def _default_names(cls, value: Any) -> Any:
        """Keras class names -> type names; a layer without a name gets ``<type>_<index>``; ``inputs``
        naming just the layer before (the default) is dropped, so one network has one form."""
        if not isinstance(value, list):
            return value
        named = [_named(canonical_type(item, LAYER_ALIASES), index) for index, item in enumerate(value)]
        return [_without_default_inputs(item, named[index - 1] if index else None) for index, item in enumerate(named)]

    @model_validator(mode="after")
    def _unique_names_and_shapes(self) -> "ModelSpec":
        first_use: dict[str | None, int] = {}
        duplicates = []
        for index, layer in enumerate(self.layers):
            if layer.name in first_use:
                duplicates.append(
                    SpecIssue(
                        f"name {layer.name!r} is already used by layer {first_use[layer.name]}",
                        layer=index,
                        name=layer.name,
                        field="name",
                        rule="unique_name",
                        value=layer.name,
                    )
                )
            if layer.name == INPUT:
                duplicates.append(SpecIssue(
                    f"{INPUT!r} names the model input in `inputs`; call this layer something else",
                    layer=index, name=layer.name, field="name", rule="reserved_name", value=layer.name,
                ))  # fmt: skip
            first_use.setdefault(layer.name, index)
        if duplicates:
            raise SpecError(duplicates)
        report = infer_shapes(self)  # raises SpecError naming the first layer that does not fit
        if self.class_names is not None and len(self.class_names) != report.output_shape[-1]:
            raise SpecError(
                SpecIssue(
                    f"{len(self.class_names)} class names for an output of {report.output_shape[-1]} classes",
                    field="class_names",
                    rule="class_names_match_output",
                    value=self.class_names,
                )
            )
        self._report = report
        return self

    @model_validator(mode="after")
    def _logits_need_a_logit_output(self) -> "ModelSpec":
        """``from_logits: true`` on an output that is already a softmax or sigmoid means two things in Keras:
        on TensorFlow it quietly reads the activation's input (a warning), on JAX and torch it does not."""
        last = self.layers[-1]
        activation = last.final_activation()
        if self.training.loss.takes_logits and activation in LOGIT_ACTIVATIONS:
            raise SpecError(
                SpecIssue(
                    f"training.loss.from_logits is true but this last layer ends in {activation}, so its output is "
                    f"not logits; remove the activation (activation: linear) or set from_logits: false",
                    layer=len(self.layers) - 1,
                    name=last.name,
                    field="activation",
                    rule="from_logits_output",
                    value=activation,
                )
            )
        return self

    def summary(self) -> ShapeReport:
        """Shapes and parameter counts per layer; ``str()`` of it is the Keras-style table."""
        return self._report

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "ModelSpec":
        """A copy with ``update`` applied, validated and summarised again (a changed copy is never stale)."""
        copied = super().model_copy(update=update, deep=deep)
        return type(self).model_validate(copied.model_dump())

    def _repr_html_(self) -> str:
        """Jupyter shows a spec as its summary table."""
        return self._report._repr_html_()

    def to_dict(self) -> dict[str, Any]:
        """The canonical form: every field, canonical type names, JSON-ready."""
        data = self.model_dump(mode="json")
        # type and name first; optional layer fields left unset (None) are left out, as before they existed,
        # and so is `inputs` naming just the layer before (the default), so one network has one canonical form
        layers, previous = [], INPUT
        for layer in data["layers"]:
            default = layer.get("inputs") == [previous]
            added = LAYER_CLASSES[layer["type"]].added_fields
            kept = {
                k: v
                for k, v in layer.items()
                if k not in ("type", "name") and v is not None and not (k in added and v == _json_default(layer, k))
            }
            layers.append(
                {"type": layer["type"], "name": layer["name"]}
                | ({k: v for k, v in kept.items() if k != "inputs"} if default else kept)
            )
            previous = layer["name"]
        data["layers"] = layers
        return data

    @property
    def num_classes(self) -> int:
        """The output's last axis: the class scores (of the image, or of each position of a map)."""
        return self.summary().output_shape[-1]

    @property
    def classifies_images(self) -> bool:
        """The output is one vector of class scores per image (what top-k predictions and confusion matrices read)."""
        return len(self.summary().output_shape) == 1 and self.target_kind == "classes"

    @property
    def target_kind(self) -> Literal["classes", "values"]:
        """What the data gives per image: ``classes`` (a class index per position of the output's last axis of
        scores) or ``values`` (numbers of the output's shape), as the loss reads them."""
        return self.training.loss.target_kind(self.num_classes)

    @property
    def target_shape(self) -> tuple[int, ...]:
        """The shape of one image's target: the output's shape, without its last axis for class indices."""
        shape = tuple(self.summary().output_shape)
        return shape[:-1] if self.target_kind == "classes" else shape

    @property
    def task(self) -> Literal["classification", "segmentation", "regression"]:
        """What the spec is trained for, as reports and ``predict`` show it: one class per image
        (classification), a class per pixel (segmentation: class scores, or one probability per pixel
        trained by binary cross-entropy or Dice), or values (regression, multi-label probabilities)."""
        output = self.summary().output_shape
        if self.target_kind == "classes":
            return "classification" if len(output) == 1 else "segmentation"
        binary_mask = len(output) == 3 and output[-1] == 1 and self.training.loss.probabilities
        return "segmentation" if binary_mask else "regression"

    def predicted_classes(self, output: Any) -> Any:
        """A segmentation's or classification's predicted class per image or pixel from the model's output (numpy):
        the highest score, or for one probability per pixel, 1 where it is above 0.5 (a logit above 0 when the
        output is logits: ``from_logits``)."""
        if self.target_kind == "values":
            return (output[..., 0] > (0.0 if self.training.loss.takes_logits else 0.5)).astype("int64")
        return output.argmax(axis=-1)

    @model_validator(mode="after")
    def _metrics_fit_the_targets(self) -> "ModelSpec":
        """A metric reads the targets the loss trains on: accuracy and mean IoU need class indices."""
        kind = self.target_kind
        wrong = [name for name in self.training.metrics if METRICS[name].targets != kind]
        if wrong:
            fitting = [name for name, metric in METRICS.items() if metric.targets == kind]
            raise SpecError(
                SpecIssue(
                    f"training.metrics {wrong} need {METRICS[wrong[0]].targets} targets, but {self.training.loss} "
                    f"on this output {list(self.summary().output_shape)} trains on {kind}; use {', '.join(fitting)}",
                    field="training.metrics",
                    rule="metric_targets",
                    value=wrong,
                )
            )
        return self


def _json_default(layer: dict[str, Any], field: str) -> Any:
    """A field's default as ``model_dump(mode="json")`` writes it (tuples as lists)."""
    default = LAYER_CLASSES[layer["type"]].model_fields[field].default
    return [list(v) if isinstance(v, tuple) else v for v in default] if isinstance(default, tuple) else default


def _without_default_inputs(item: Any, before: Any) -> Any:
    previous = INPUT if before is None else (before.name if isinstance(before, LayerSpec) else _name_of(before))
    if isinstance(item, LayerSpec):
        return item.model_copy(update={"inputs": None}) if item.inputs == [previous] else item
    if isinstance(item, dict) and item.get("inputs") == [previous] and previous is not None:
        return {key: value for key, value in item.items() if key != "inputs"}
    return item


def _name_of(item: Any) -> Any:
    return item.get("name") if isinstance(item, dict) else None


def _named(item: Any, index: int) -> Any:
    """A layer (a mapping or a ``LayerSpec``) with its default name filled in when it has none."""
    if isinstance(item, LayerSpec):
        return item if item.name else item.model_copy(update={"name": f"{item.type}_{index}"})
    kind = item.get("type") if isinstance(item, dict) else None
    if isinstance(kind, str) and kind in LAYER_CLASSES and item.get("name") is None:
        return {**item, "name": f"{kind}_{index}"}
    return item
