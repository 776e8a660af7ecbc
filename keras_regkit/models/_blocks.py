"""Blocks and checks shared by the backbones (private).

Each backbone file (`cnn.py`, `mlp.py`, `resnet.py`, `fast_net.py`) holds
its public `build_*` function and the blocks only it uses; what two or more
of them share lives here.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_regkit._validation import check_int
from keras_regkit._validation import invalid
from keras_regkit.models.presets import CapacityPreset
from keras_regkit.models.presets import PresetLike
from keras_regkit.models.presets import get_preset


def resolve_model_args(
    preset: PresetLike, input_shape: Sequence[int], num_classes: int,
    rank: int | None = None,
) -> tuple[CapacityPreset, tuple[int, ...], int]:
    """`(preset, input_shape, num_classes)` resolved and validated.

    Args:
        preset: a `CapacityPreset`, a preset name, a mapping or a YAML path.
        input_shape: shape of one example.
        num_classes: number of classes (at least 2).
        rank: required length of `input_shape`; any length >= 1 if None.
    """
    return (get_preset(preset),
            *check_model_args(input_shape, num_classes, rank))


def check_model_args(input_shape: Sequence[int], num_classes: int,
                     rank: int | None = None) -> tuple[tuple[int, ...], int]:
    """Validates and returns `(input_shape, num_classes)` as plain values.

    Args:
        input_shape: shape of one example.
        num_classes: number of classes (at least 2).
        rank: required length of `input_shape`; any length >= 1 if None.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    valid = (len(shape) == rank if rank else len(shape) >= 1) and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    )
    if not valid:
        size = f"{rank}" if rank else "at least 1"
        raise invalid(
            "input_shape", input_shape, f"a tuple of {size} positive integers"
        )
    return shape, check_int("num_classes", num_classes, 2, None)


def check_spatial_size(input_shape: Sequence[int], num_pools: int,
                       extra: int = 0) -> None:
    """Raises when `num_pools` 2x2 poolings would shrink the image to 0."""
    smallest = 2 ** num_pools + extra
    if min(input_shape[:2]) < smallest:
        raise invalid(
            "input_shape", input_shape,
            f"height and width of at least {smallest} for "
            f"{num_pools} pooling stages",
        )


def conv_kernel_regularizer(
        preset: CapacityPreset) -> keras.regularizers.Regularizer | None:
    """L2(l2) for conv kernels in `"l2"` mode, else None."""
    if preset.weight_decay_mode != "l2" or preset.l2 == 0:
        return None
    return keras.regularizers.L2(preset.l2)


def dense_kernel_regularizer(
        preset: CapacityPreset) -> keras.regularizers.Regularizer | None:
    """L2(10 * l2) for hidden Dense kernels in `"l2"` mode, else None.

    The reference recipe weights the Dense penalty ten times the conv one; in
    `"decoupled"` mode the optimizer's weight decay replaces it.
    """
    if preset.weight_decay_mode != "l2" or preset.l2 == 0:
        return None
    return keras.regularizers.L2(preset.l2 * 10)


def dense_kernel_constraint(
        preset: CapacityPreset) -> keras.constraints.Constraint | None:
    """`MaxNorm(preset.max_norm)` for hidden Dense kernels, or None."""
    if preset.max_norm is None:
        return None
    return keras.constraints.MaxNorm(max_value=preset.max_norm)


def apply_dense_block(x: keras.KerasTensor, units: int,
                      preset: CapacityPreset, name: str) -> keras.KerasTensor:
    """Dense -> BatchNorm? -> ReLU -> Dropout? (BN and dropout when enabled).

    The Dense layer drops its bias when batch norm follows (the norm's
    beta is the bias).

    Args:
        x: input tensor (rank 2).
        units: width of the Dense layer.
        preset: the `CapacityPreset` giving batch norm, dropout, L2 and
            max-norm.
        name: prefix of the block's layer names.

    Returns:
        The output tensor.
    """
    x = keras.layers.Dense(
        units,
        use_bias=not preset.batch_norm,
        kernel_regularizer=dense_kernel_regularizer(preset),
        kernel_constraint=dense_kernel_constraint(preset),
        name=name,
    )(x)
    if preset.batch_norm:
        x = keras.layers.BatchNormalization(
            momentum=preset.bn_momentum, name=f"{name}_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    if preset.dropout_dense > 0:
        x = keras.layers.Dropout(
            preset.dropout_dense, name=f"{name}_dropout"
        )(x)
    return x


def apply_classifier_head(x: keras.KerasTensor, preset: CapacityPreset,
                          num_classes: int) -> keras.KerasTensor:
    """The hidden Dense blocks of `preset.dense_units`, then softmax."""
    for index, units in enumerate(preset.dense_units):
        x = apply_dense_block(x, units, preset, name=f"dense{index + 1}")
    return keras.layers.Dense(
        num_classes, activation="softmax", name="predictions"
    )(x)
