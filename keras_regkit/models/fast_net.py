"""A fast CIFAR-10 network in the style of airbench (Jordan 2024).

A 2x2 convolution stem (no padding: 32 -> 31) with GELU, then one group
per entry of `preset.conv_filters`, each

    Conv 3x3 -> MaxPool 2x2 -> BN -> GELU -> (Conv 3x3 -> BN -> GELU) x k

with `k = convs_per_block - 1`, then global max pooling and a bias-free
linear head whose logits are scaled down (by 1/9 in airbench) before the
softmax. It leans on batch norm, label smoothing and augmentation rather
than dropout; dropout is added only when the preset asks for it. Unlike
airbench the stem is trained from scratch (no patch-whitening init).
"""

import keras

from keras_regkit._validation import check_positive
from keras_regkit.models.cnn import check_spatial_size
from keras_regkit.models.cnn import conv_kernel_regularizer
from keras_regkit.models.mlp import check_model_args
from keras_regkit.models.presets import get_preset

LOGIT_SCALE = 1.0 / 9.0


def _conv(x, filters, preset, name, kernel_size=3, padding="same",
          use_bias=None):
    if use_bias is None:
        use_bias = not preset.batch_norm
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        kernel_regularizer=conv_kernel_regularizer(preset),
        name=name,
    )(x)


def _bn_gelu(x, preset, name):
    if preset.batch_norm:
        x = keras.layers.BatchNormalization(
            momentum=preset.bn_momentum, name=f"{name}_bn"
        )(x)
    return keras.layers.Activation("gelu", name=f"{name}_gelu")(x)


def apply_conv_group(x, filters, preset, group_index):
    """One airbench group: conv, pool, BN, GELU, then more conv-BN-GELU.

    Args:
        x: input tensor.
        filters: channels of every conv in the group.
        preset: the `CapacityPreset` (`convs_per_block`, `batch_norm`,
            `dropout_conv`, L2).
        group_index: 0-based index, used in layer names.

    Returns:
        The output tensor, at half the input's spatial size.
    """
    prefix = f"group{group_index + 1}"
    x = _conv(x, filters, preset, name=f"{prefix}_1_conv")
    x = keras.layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)
    x = _bn_gelu(x, preset, name=f"{prefix}_1")
    for conv_index in range(2, preset.convs_per_block + 1):
        x = _conv(x, filters, preset, name=f"{prefix}_{conv_index}_conv")
        x = _bn_gelu(x, preset, name=f"{prefix}_{conv_index}")
    if preset.dropout_conv > 0:
        x = keras.layers.SpatialDropout2D(
            preset.dropout_conv, name=f"{prefix}_dropout"
        )(x)
    return x


def build_fast_net(input_shape, num_classes, preset="fast", name=None,
                   logit_scale=LOGIT_SCALE):
    """Builds the airbench-like fast network for a capacity preset.

    Args:
        input_shape: `(height, width, channels)`, e.g. `(32, 32, 3)`.
        num_classes: number of classes (at least 2).
        preset: a `CapacityPreset`, a preset name or a YAML path. Uses
            `stem_filters`, `conv_filters` (group widths),
            `convs_per_block`, `batch_norm`, `dropout_conv`,
            `dropout_dense` (before the head) and, in `"l2"` mode, `l2`.
            Defaults to `"fast"`.
        name: model name. Defaults to `f"{preset.name}_fast"`.
        logit_scale: factor applied to the logits before the softmax.
            Defaults to `1/9` (airbench).

    Returns:
        An uncompiled functional `keras.Model` with a softmax output.

    Example:

    >>> model = build_fast_net((32, 32, 3), 10, "fast")
    >>> model.name
    'fast_fast'

    References:
        Keller Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU",
        2024 (airbench).
    """
    preset = get_preset(preset)
    input_shape, num_classes = check_model_args(
        input_shape, num_classes, rank=3
    )
    logit_scale = check_positive("logit_scale", logit_scale)
    check_spatial_size(input_shape, len(preset.conv_filters), extra=1)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = _conv(
        inputs, preset.stem_filters, preset, name="stem_conv", kernel_size=2,
        padding="valid", use_bias=True,
    )
    x = keras.layers.Activation("gelu", name="stem_gelu")(x)
    for group_index, filters in enumerate(preset.conv_filters):
        x = apply_conv_group(x, filters, preset, group_index)
    x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if preset.dropout_dense > 0:
        x = keras.layers.Dropout(preset.dropout_dense, name="head_dropout")(x)
    x = keras.layers.Dense(num_classes, use_bias=False, name="logits")(x)
    x = keras.layers.Rescaling(logit_scale, name="logit_scale")(x)
    outputs = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"{preset.name}_fast")
