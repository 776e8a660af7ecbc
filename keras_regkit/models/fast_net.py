"""A fast CIFAR-10 network in the style of airbench (Jordan 2024).

Inputs in [0, 1] are standardized with CIFAR-10's channel statistics, then a
2x2 stem (no padding: 32 -> 31) with GELU, then one group per entry of
`preset.conv_filters`, each

    Conv 3x3 -> MaxPool 2x2 -> BN -> GELU -> (Conv 3x3 -> BN -> GELU) x k

with `k = convs_per_block - 1`, then global max pooling and a bias-free
linear head whose logits are scaled down (by 1/9 in airbench) before the
softmax. Batch norm has no learned scale (airbench freezes it at 1).

The preset switches airbench's tricks on one by one, each a library piece:
`stem_whitening` (a `PatchWhitening` stem, fitted to the training images by
`adapt_fast_net`), `dirac_init` (`PartialDirac` conv kernels) and
`bias_lr_multiplier` (a `ScaledBias` after each batch norm). Convolutions
are otherwise initialized like PyTorch's (uniform in +-1/sqrt(fan_in)), the
scale airbench's learning rates were tuned for. Convolutions, batch norm
and GELU are `FastConv2D`, `FusedBatchNormalization` and `GELU`: Keras's
functions, on faster TensorFlow kernels (in mixed bfloat16 on an AMX Xeon,
batch norm and GELU made the training step 2x faster, and the small maps'
kernel gradients as matmuls 1.1x faster again).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import numpy.typing as npt

from keras_regkit._images import to_float_images
from keras_regkit._validation import check_positive
from keras_regkit.initializers import PartialDirac
from keras_regkit.layers.fast_kernels import FastConv2D
from keras_regkit.layers.fast_kernels import FusedBatchNormalization
from keras_regkit.layers.fast_kernels import GELU
from keras_regkit.layers.scaled_bias import ScaledBias
from keras_regkit.layers.whitening import PatchWhitening
from keras_regkit.models._blocks import check_spatial_size
from keras_regkit.models._blocks import conv_kernel_regularizer
from keras_regkit.models._blocks import resolve_model_args
from keras_regkit.models.presets import CapacityPreset
from keras_regkit.models.presets import PresetLike

LOGIT_SCALE = 1.0 / 9.0
# CIFAR-10 training-set channel means and standard deviations (of [0, 1]
# pixels), as airbench standardizes its inputs.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
BN_EPSILON = 1e-5
WHITENING_IMAGES = 5000


def torch_default_initializer(
        seed: int | None = None) -> keras.initializers.Initializer:
    """PyTorch's default conv/linear init: uniform in +-1/sqrt(fan_in)."""
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed
    )


def _conv(x: keras.KerasTensor, filters: int, preset: CapacityPreset,
          name: str, kernel_size: int = 3, padding: str = "same",
          use_bias: bool | None = None) -> keras.KerasTensor:
    if use_bias is None:
        use_bias = not preset.batch_norm
    init = (PartialDirac() if preset.dirac_init and kernel_size == 3
            else torch_default_initializer())
    return FastConv2D(
        filters,
        kernel_size,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=init,
        kernel_regularizer=conv_kernel_regularizer(preset),
        name=name,
    )(x)


def _bn_gelu(x: keras.KerasTensor, preset: CapacityPreset,
             name: str) -> keras.KerasTensor:
    if preset.batch_norm:
        separate_bias = preset.bias_lr_multiplier != 1.0
        x = FusedBatchNormalization(
            momentum=preset.bn_momentum, epsilon=BN_EPSILON, scale=False,
            center=not separate_bias, name=f"{name}_bn",
        )(x)
        if separate_bias:
            x = ScaledBias(preset.bias_lr_multiplier, name=f"{name}_bias")(x)
    return GELU(name=f"{name}_gelu")(x)


def apply_conv_group(x: keras.KerasTensor, filters: int,
                     preset: CapacityPreset,
                     group_index: int) -> keras.KerasTensor:
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


def build_fast_net(input_shape: Sequence[int], num_classes: int,
                   preset: PresetLike = "fast", name: str | None = None,
                   logit_scale: float = LOGIT_SCALE) -> keras.Model:
    """Builds the airbench-like fast network for a capacity preset.

    Args:
        input_shape: `(height, width, channels)`, e.g. `(32, 32, 3)`.
        num_classes: number of classes (at least 2).
        preset: a `CapacityPreset`, a preset name or a YAML path. Uses
            `stem_filters` (ignored with `stem_whitening`, whose width is
            `2 * 2 * 2 * channels`), `stem_whitening`, `dirac_init`,
            `bias_lr_multiplier`, `conv_filters` (group widths),
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
    preset, input_shape, num_classes = resolve_model_args(
        preset, input_shape, num_classes, rank=3)
    logit_scale = check_positive("logit_scale", logit_scale)
    check_spatial_size(input_shape, len(preset.conv_filters), extra=1)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    if input_shape[-1] == len(CIFAR10_MEAN):
        x = keras.layers.Normalization(
            mean=CIFAR10_MEAN, variance=np.square(CIFAR10_STD),
            name="standardize", dtype="float32",
        )(x)
    if preset.stem_whitening:
        # float32 even under mixed precision: whitening amplifies the
        # low-variance patch directions up to 1/sqrt(epsilon) = 45 times,
        # bfloat16 rounding of the inputs with them (it costs 0.2% of the
        # network's FLOPs).
        x = PatchWhitening(patch_size=2, name="stem_whitening",
                           dtype="float32")(x)
    else:
        x = _conv(
            x, preset.stem_filters, preset, name="stem_conv", kernel_size=2,
            padding="valid", use_bias=True,
        )
    x = GELU(name="stem_gelu")(x)
    for group_index, filters in enumerate(preset.conv_filters):
        x = apply_conv_group(x, filters, preset, group_index)
    x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if preset.dropout_dense > 0:
        x = keras.layers.Dropout(preset.dropout_dense, name="head_dropout")(x)
    x = keras.layers.Dense(
        num_classes, use_bias=False, name="logits",
        kernel_initializer=torch_default_initializer(),
    )(x)
    x = keras.layers.Rescaling(logit_scale, name="logit_scale")(x)
    outputs = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"{preset.name}_fast")


def adapt_fast_net(model: keras.Model, images: npt.ArrayLike,
                   max_images: int = WHITENING_IMAGES) -> int:
    """Fits every `PatchWhitening` layer of `model` to training images.

    Each layer is adapted to what it sees: `images` (the first
    `max_images`) run through the layers before it.

    Args:
        model: a functional model, e.g. from `build_fast_net`.
        images: training images as the model takes them (NHWC).
        max_images: how many images to use. Defaults to `5000` (airbench).

    Returns:
        The number of layers adapted.
    """
    layers = [layer for layer in model.layers
              if isinstance(layer, PatchWhitening)]
    if not layers:
        return 0
    images = to_float_images(
        np.asarray(images)[:int(check_positive("max_images", max_images))])
    for layer in layers:
        feeder = keras.Model(model.inputs, layer.input)
        seen = keras.ops.convert_to_numpy(
            feeder.predict(images, batch_size=500, verbose=0))
        layer.adapt(seen.astype("float32"))
    return len(layers)
