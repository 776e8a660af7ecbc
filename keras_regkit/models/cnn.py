"""The reference CNN, generalized to any number of stages.

For the `"medium"` preset this is exactly the reference recipe's layer sequence:

    block1: Conv 64 -> BN -> ReLU -> SpatialDropout(0.2)
            Conv 64 -> BN -> ReLU -> MaxPool -> SpatialDropout(0.2)
    block2: the same with 128 filters and SpatialDropout(0.3)
    Flatten -> Dense 512 -> BN -> ReLU -> Dropout(0.4)
            -> Dense 256 -> BN -> ReLU -> Dropout(0.4) -> Dense(softmax)

In general every convolution is followed by a spatial dropout, and the last
one of a stage is pooled first; stage `i` (from 0) drops at
`dropout_conv * (1 + 0.5 * i)`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_regkit._validation import invalid
from keras_regkit.models._blocks import apply_classifier_head
from keras_regkit.models._blocks import resolve_model_args
from keras_regkit.models._blocks import check_spatial_size
from keras_regkit.models._blocks import conv_kernel_regularizer
from keras_regkit.models.presets import CapacityPreset
from keras_regkit.models.presets import PresetLike


def stage_dropout_rate(preset: CapacityPreset, stage_index: int) -> float:
    """The reference recipe's spatial dropout rate for stage `stage_index` (from 0)."""
    return preset.dropout_conv * (1 + 0.5 * stage_index)


def apply_conv_bn_act(x: keras.KerasTensor, filters: int,
                      preset: CapacityPreset, name: str) -> keras.KerasTensor:
    """Conv2D 3x3 same -> BatchNorm? -> ReLU (no conv bias when BN follows).

    Args:
        x: input tensor `(batch, height, width, channels)`.
        filters: number of output channels.
        preset: the `CapacityPreset` giving batch norm and L2.
        name: prefix of the layer names (`name_conv`, `name_bn`,
            `name_relu`).

    Returns:
        The output tensor.
    """
    x = keras.layers.Conv2D(
        filters,
        3,
        padding="same",
        use_bias=not preset.batch_norm,
        kernel_regularizer=conv_kernel_regularizer(preset),
        name=f"{name}_conv",
    )(x)
    if preset.batch_norm:
        x = keras.layers.BatchNormalization(
            momentum=preset.bn_momentum, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def apply_conv_stage(x: keras.KerasTensor, filters: int,
                     preset: CapacityPreset,
                     stage_index: int) -> keras.KerasTensor:
    """One seed conv stage: convs with spatial dropout, max pooling at the end.

    Args:
        x: input tensor.
        filters: channels of every conv in the stage.
        preset: the `CapacityPreset` (uses `convs_per_block`,
            `dropout_conv`, `batch_norm`, `l2`).
        stage_index: 0-based stage index (scales the dropout rate).

    Returns:
        The output tensor, at half the input's spatial size.
    """
    prefix = f"block{stage_index + 1}"
    rate = stage_dropout_rate(preset, stage_index)
    for conv_index in range(preset.convs_per_block):
        name = f"{prefix}_{conv_index + 1}"
        x = apply_conv_bn_act(x, filters, preset, name=name)
        if conv_index == preset.convs_per_block - 1:
            x = keras.layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)
        if rate > 0:
            x = keras.layers.SpatialDropout2D(rate, name=f"{name}_dropout")(x)
    return x


def check_conv_dropout(preset: CapacityPreset) -> None:
    """Raises when the deepest CNN stage's dropout rate reaches 1."""
    deepest = stage_dropout_rate(preset, len(preset.conv_filters) - 1)
    if deepest >= 1:
        limit = 1 / (1 + 0.5 * (len(preset.conv_filters) - 1))
        raise invalid(
            "dropout_conv", preset.dropout_conv,
            f"a float in [0, {limit:.4g}) with {len(preset.conv_filters)} "
            "stages (stage i drops at dropout_conv * (1 + 0.5 * i) < 1)",
        )


def build_cnn(input_shape: Sequence[int], num_classes: int,
              preset: PresetLike = "medium",
              name: str | None = None) -> keras.Model:
    """Builds the reference CNN for a capacity preset.

    Args:
        input_shape: `(height, width, channels)`, e.g. `(32, 32, 3)`.
        num_classes: number of classes (at least 2).
        preset: a `CapacityPreset`, a preset name or a YAML path. Uses
            `conv_filters`, `convs_per_block`, `dense_units`, `batch_norm`,
            `dropout_conv`, `dropout_dense`, `max_norm` and, in `"l2"`
            mode, `l2` (convs) and `10 * l2` (hidden Dense). Defaults to
            `"medium"`.
        name: model name. Defaults to `f"{preset.name}_cnn"`.

    Returns:
        An uncompiled functional `keras.Model` with a softmax output.

    Example:

    >>> model = build_cnn((32, 32, 3), 10, "medium")
    >>> model.name
    'medium_cnn'
    """
    preset, input_shape, num_classes = resolve_model_args(
        preset, input_shape, num_classes, rank=3)
    check_spatial_size(input_shape, len(preset.conv_filters))
    check_conv_dropout(preset)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    for stage_index, filters in enumerate(preset.conv_filters):
        x = apply_conv_stage(x, filters, preset, stage_index)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = apply_classifier_head(x, preset, num_classes)
    return keras.Model(inputs, outputs, name=name or f"{preset.name}_cnn")
