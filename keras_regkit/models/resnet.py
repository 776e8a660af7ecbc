"""A small pre-activation ResNet for CIFAR-sized images.

Stem conv, then stages of pre-activation basic blocks (He et al. 2016,
"Identity Mappings in Deep Residual Networks"): BN -> ReLU -> Conv 3x3 ->
BN -> ReLU -> [SpatialDropout] -> Conv 3x3, added to the shortcut. The
first block of every stage after the first halves the resolution. The
residual branch can be dropped per sample (stochastic depth, Huang et al.
2016) with a rate rising linearly to `preset.stochastic_depth_rate` in the
last block, and the last two stages can carry DropBlock (Ghiasi et al.
2018). Then BN -> ReLU -> global average pooling -> Dropout -> softmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_regkit._validation import invalid
from keras_regkit.layers.drop_block import DropBlock2D
from keras_regkit.layers.stochastic_depth import StochasticDepth
from keras_regkit.models._blocks import conv_kernel_regularizer
from keras_regkit.models._blocks import resolve_model_args
from keras_regkit.models.presets import CapacityPreset
from keras_regkit.models.presets import PresetLike

_INITIALIZER = "he_normal"


def _conv(x: keras.KerasTensor, filters: int, preset: CapacityPreset,
          name: str, kernel_size: int = 3,
          strides: int = 1) -> keras.KerasTensor:
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not preset.batch_norm,
        kernel_initializer=_INITIALIZER,
        kernel_regularizer=conv_kernel_regularizer(preset),
        name=f"{name}_conv",
    )(x)


def _check_stackwise(name: str, value: Sequence[int] | None,
                     default: Sequence[int],
                     length: int | None = None) -> tuple[int, ...]:
    if value is None:
        return tuple(default)
    size = "non-empty" if length is None else f"{length}-element"
    expected = f"a {size} tuple of positive integers"
    ok = isinstance(value, (tuple, list)) and len(value) > 0 and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    )
    if not ok or (length is not None and len(value) != length):
        raise invalid(name, value, expected)
    return tuple(value)


def _pre_activation(x: keras.KerasTensor, preset: CapacityPreset,
                    name: str) -> keras.KerasTensor:
    if preset.batch_norm:
        x = keras.layers.BatchNormalization(
            momentum=preset.bn_momentum, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def apply_residual_block(x: keras.KerasTensor, filters: int,
                         preset: CapacityPreset, strides: int,
                         drop_path_rate: float, dropblock: bool,
                         name: str) -> keras.KerasTensor:
    """One pre-activation basic block.

    Args:
        x: input tensor.
        filters: channels of both convolutions.
        preset: the `CapacityPreset` (batch norm, L2, `dropout_conv`).
        strides: stride of the first conv (2 halves the resolution).
        drop_path_rate: stochastic depth rate of the residual branch.
        dropblock: whether DropBlock follows the addition.
        name: prefix of the block's layer names.

    Returns:
        The output tensor.
    """
    pre = _pre_activation(x, preset, name=f"{name}_pre")
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(pre, filters, preset, f"{name}_shortcut", 1, strides)
    else:
        shortcut = x
    residual = _conv(pre, filters, preset, f"{name}_1", strides=strides)
    residual = _pre_activation(residual, preset, name=f"{name}_2_pre")
    if preset.dropout_conv > 0:
        residual = keras.layers.SpatialDropout2D(
            preset.dropout_conv, name=f"{name}_dropout"
        )(residual)
    residual = _conv(residual, filters, preset, f"{name}_2")
    if drop_path_rate > 0:
        residual = StochasticDepth(
            drop_path_rate, name=f"{name}_drop_path"
        )(residual)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, residual])
    if dropblock:
        x = DropBlock2D(
            preset.dropblock_rate, preset.dropblock_size,
            name=f"{name}_dropblock",
        )(x)
    return x


def apply_stack(x: keras.KerasTensor, filters: int, num_blocks: int,
                preset: CapacityPreset, stage_index: int,
                path_rates: Sequence[float],
                dropblock: bool) -> keras.KerasTensor:
    """One stage of `num_blocks` residual blocks (downsampling if not first)."""
    for block_index in range(num_blocks):
        strides = 2 if stage_index > 0 and block_index == 0 else 1
        x = apply_residual_block(
            x, filters, preset, strides, path_rates[block_index], dropblock,
            name=f"stage{stage_index + 1}_block{block_index + 1}",
        )
    return x


def build_resnet(input_shape: Sequence[int], num_classes: int,
                 preset: PresetLike = "medium", name: str | None = None,
                 stackwise_num_filters: Sequence[int] | None = None,
                 stackwise_num_blocks: Sequence[int] | None = None,
                 ) -> keras.Model:
    """Builds a pre-activation ResNet for a capacity preset.

    Args:
        input_shape: `(height, width, channels)`, e.g. `(32, 32, 3)`.
        num_classes: number of classes (at least 2).
        preset: a `CapacityPreset`, a preset name or a YAML path. Uses
            `stem_filters`, `conv_filters`, `resnet_blocks`, `batch_norm`,
            `dropout_conv` (inside blocks), `dropout_dense` (before the
            head), `stochastic_depth_rate`, `dropblock_rate`,
            `dropblock_size` and, in `"l2"` mode, `l2`. Defaults to
            `"medium"`.
        name: model name. Defaults to `f"{preset.name}_resnet"`.
        stackwise_num_filters: channels per stage. Defaults to
            `preset.conv_filters`.
        stackwise_num_blocks: blocks per stage. Defaults to
            `preset.resnet_blocks` for every stage.

    Returns:
        An uncompiled functional `keras.Model` with a softmax output.

    Example:

    >>> model = build_resnet((32, 32, 3), 10, "small")
    >>> model.name
    'small_resnet'
    """
    preset, input_shape, num_classes = resolve_model_args(
        preset, input_shape, num_classes, rank=3)
    filters = _check_stackwise(
        "stackwise_num_filters", stackwise_num_filters, preset.conv_filters
    )
    blocks = _check_stackwise(
        "stackwise_num_blocks", stackwise_num_blocks,
        (preset.resnet_blocks,) * len(filters), length=len(filters),
    )
    total = sum(blocks)
    rates = [preset.stochastic_depth_rate * (i + 1) / total
             for i in range(total)]
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = _conv(inputs, preset.stem_filters, preset, name="stem")
    start = 0
    for stage_index, (width, count) in enumerate(zip(filters, blocks)):
        dropblock = (
            preset.dropblock_rate > 0 and stage_index >= len(filters) - 2
        )
        x = apply_stack(
            x, width, count, preset, stage_index,
            rates[start:start + count], dropblock,
        )
        start += count
    x = _pre_activation(x, preset, name="head")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if preset.dropout_dense > 0:
        x = keras.layers.Dropout(preset.dropout_dense, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name=name or f"{preset.name}_resnet")
