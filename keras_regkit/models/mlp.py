"""A multilayer perceptron backbone.

The reference recipe's builder accepted `architecture="mlp"` but never defined it; this
is that model: Flatten, then one Dense block per entry of
`preset.dense_units`, then a softmax classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_regkit.models._blocks import apply_classifier_head
from keras_regkit.models._blocks import resolve_model_args
from keras_regkit.models.presets import PresetLike


def build_mlp(input_shape: Sequence[int], num_classes: int,
              preset: PresetLike = "medium",
              name: str | None = None) -> keras.Model:
    """Builds the MLP backbone: Flatten -> Dense blocks -> softmax.

    Args:
        input_shape: shape of one example, e.g. `(32, 32, 3)`.
        num_classes: number of classes (at least 2).
        preset: a `CapacityPreset`, a preset name or a YAML path. Uses
            `dense_units`, `batch_norm`, `dropout_dense`, `max_norm` and, in
            `"l2"` mode, `l2`. Defaults to `"medium"`.
        name: model name. Defaults to `f"{preset.name}_mlp"`.

    Returns:
        An uncompiled functional `keras.Model` with a softmax output.

    Example:

    >>> model = build_mlp((32, 32, 3), 10, "small")
    >>> model.name
    'small_mlp'
    """
    preset, input_shape, num_classes = resolve_model_args(
        preset, input_shape, num_classes)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    outputs = apply_classifier_head(x, preset, num_classes)
    return keras.Model(inputs, outputs, name=name or f"{preset.name}_mlp")
