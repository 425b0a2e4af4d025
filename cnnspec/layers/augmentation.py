"""Random data augmentation: Keras 3's ``Random*`` image layers, active in training only.

Each acts per image while training and is the identity at inference, so exported
inference files leave it out (``training_only``). Factors are a number or a
``[lower, upper]`` pair with Keras's meaning, and a factor Keras's constructor refuses
is a spec error here: each class names its Keras check in ``factor_rules``.
"""

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ValidationInfo, field_validator

from ..fields import Float
from ..registry import register_layer
from ..shapes import Shape
from .base import CHANNELS_LAST, LayerSpec, needs_image

__all__ = ["RandomContrast", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_or_pair(value: Any) -> Any:
    """One message for every wrong shape of factor (pydantic would report each arm of the union)."""
    if _is_number(value) or isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_number, value)):
        return value
    raise ValueError(f"must be a number or a [lower, upper] pair of numbers, got {value!r}")


# A number or a [lower, upper] pair, kept as written (as Keras keeps `height_factor`).
Factor = Annotated[Float | tuple[Float, Float], BeforeValidator(_number_or_pair)]
FillMode = Literal["reflect", "wrap", "constant", "nearest"]


@dataclass(frozen=True)
class FactorRule:
    """How a Keras layer checks a factor and reads it as a (lower, upper) range.

    A number ``f`` means ``(max(-|f|, low), |f|)``; a pair means itself, sorted.
    ``each``: both ends of a pair must lie in the bounds (RandomTranslation, RandomZoom);
    otherwise Keras's base rule (``BaseImagePreprocessingLayer._set_factor``) refuses
    only a first end above ``high`` or a second end below ``low``.
    """

    keras: str  # where the check is, for the message
    low: float
    high: float
    low_open: bool = False  # RandomZoom refuses -1 itself (a zoom of 1 + (-1) = 0)
    each: bool = True

    def _inside(self, number: float) -> bool:
        above_low = number > self.low if self.low_open else number >= self.low
        return above_low and number <= self.high

    def accepts(self, value: float | tuple[float, float]) -> bool:
        if not isinstance(value, tuple):
            return self._inside(value)
        if self.each:
            return all(map(self._inside, value))
        return not (value[0] > self.high or value[1] < self.low)

    def range(self, value: float | tuple[float, float]) -> tuple[float, float]:
        if isinstance(value, tuple):
            lower, upper = sorted(value)
            return lower, upper
        return max(-abs(value), self.low), abs(value)

    def describe(self) -> str:
        bounds = f"{'(' if self.low_open else '['}{self.low}, {self.high}]"
        if self.each:
            return f"a number in {bounds} or a [lower, upper] pair of them"
        return f"a number in {bounds} or a [lower, upper] pair with lower <= {self.high} and upper >= {self.low}"


# keras/src/layers/preprocessing/image_preprocessing/: random_translation.py `_check_factor_range`,
# random_zoom.py `_check_factor_range`, base_image_preprocessing_layer.py `_set_factor` with the
# class's `_FACTOR_BOUNDS` (RandomRotation (-1, 1), RandomContrast (0, 1)).
TRANSLATION_RULE = FactorRule("RandomTranslation", -1.0, 1.0)
ZOOM_RULE = FactorRule("RandomZoom", -1.0, 1.0, low_open=True)
ROTATION_RULE = FactorRule("RandomRotation", -1.0, 1.0, each=False)
CONTRAST_RULE = FactorRule("RandomContrast", 0.0, 1.0, each=False)


class _Augmentation(LayerSpec):
    """What the random layers share: an image in, the same shape out, no variables."""

    training_only = True
    draws_in_training = "tests/backends/test_augmentation.py hands torch the parameters Keras draws, and compares"
    factor_rules: ClassVar[dict[str, FactorRule]] = {}  # factor field -> the Keras check it passes
    # bilinear resampling of 0-255 values is what cnnspec reproduces in torch
    keras_fixed = {**CHANNELS_LAST, "interpolation": ("bilinear",), "value_range": ([0, 255],)}

    def output_shape(self, input_shape: Shape) -> Shape:
        needs_image(self, input_shape)
        return input_shape

    @field_validator("*")
    @classmethod
    def _keras_accepts(cls, value: Any, info: ValidationInfo) -> Any:
        rule = cls.factor_rules.get(info.field_name or "")
        if rule is not None and value is not None and not rule.accepts(value):
            shown = list(value) if isinstance(value, tuple) else value
            raise ValueError(f"must be {rule.describe()} (Keras {rule.keras}), got {shown}")
        return value

    @classmethod
    def from_keras(
        cls, kind: str, config: dict[str, Any], input_shape: tuple[Any, ...] | None = None
    ) -> dict[str, Any]:
        """Keras saves some factors as the range they mean (RandomRotation's 0.1 as [-0.1, 0.1]): a range that
        one number means is read back as that number, so a spec round-trips as written."""
        document = super().from_keras(kind, config)
        for field, rule in cls.factor_rules.items():
            value = document.get(field)
            if isinstance(value, list) and len(value) == 2 and rule.range(value[1]) == tuple(value):
                document[field] = value[1]
        return document

    def factor_range(self, field: str) -> tuple[float, float] | None:
        """``field``'s (lower, upper) range as Keras reads it; None for an unset optional factor."""
        value = getattr(self, field)
        return None if value is None else self.factor_rules[field].range(value)


@register_layer
class RandomFlip(_Augmentation):
    """Keras ``RandomFlip``: each image flipped with probability 1/2.

    ``horizontal_and_vertical`` draws *one* coin per image for both axes (Keras 3's
    ``flips``): half the images are turned by 180 degrees, the others left as they are.
    """

    keras_class = "RandomFlip"
    type: Literal["random_flip"] = "random_flip"
    mode: Literal["horizontal_and_vertical", "horizontal", "vertical"] = "horizontal_and_vertical"


class _Resampling(_Augmentation):
    """An affine resampling: bilinear, with points outside the image filled by ``fill_mode``."""

    fill_mode: FillMode = "reflect"
    fill_value: Float = 0.0  # fill_mode "constant" only


@register_layer
class RandomTranslation(_Resampling):
    """Keras ``RandomTranslation``: shifts by ``uniform(lower, upper) * height`` rows (positive: down)
    and ``uniform(lower, upper) * width`` columns (positive: right), per image."""

    keras_class = "RandomTranslation"
    factor_rules = {"height_factor": TRANSLATION_RULE, "width_factor": TRANSLATION_RULE}
    type: Literal["random_translation"] = "random_translation"
    height_factor: Factor
    width_factor: Factor


@register_layer
class RandomRotation(_Resampling):
    """Keras ``RandomRotation``: turns by ``uniform(lower, upper) * 360`` degrees about the image centre."""

    keras_class = "RandomRotation"
    factor_rules = {"factor": ROTATION_RULE}
    type: Literal["random_rotation"] = "random_rotation"
    factor: Factor


@register_layer
class RandomZoom(_Resampling):
    """Keras ``RandomZoom``: samples ``1 + uniform(lower, upper)`` times the output's extent about the
    centre (a positive factor zooms out); without ``width_factor`` both axes share the height's draw."""

    keras_class = "RandomZoom"
    factor_rules = {"height_factor": ZOOM_RULE, "width_factor": ZOOM_RULE}
    type: Literal["random_zoom"] = "random_zoom"
    height_factor: Factor
    width_factor: Factor | None = None


@register_layer
class RandomContrast(_Augmentation):
    """Keras ``RandomContrast``: per image and channel ``(x - mean) * c + mean``, clipped to Keras's
    default ``value_range`` [0, 255], with ``c ~ uniform(1 - lower, 1 + upper)``.

    As Keras 3 reads it, a single number ``f`` means the range (0, f): ``c`` in [1, 1 + f], so
    contrast only grows; write ``[f, f]`` for [1 - f, 1 + f].
    """

    keras_class = "RandomContrast"
    factor_rules = {"factor": CONTRAST_RULE}
    type: Literal["random_contrast"] = "random_contrast"
    factor: Factor

    VALUE_RANGE: ClassVar[tuple[float, float]] = (
        0.0,
        255.0,
    )  # Keras's default `value_range`: outputs are clipped to it
