"""DropBlock: structured dropout of square regions of feature maps."""

from __future__ import annotations

import functools
import types
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Shape, Tensor
from keras_regkit._validation import (
    check_choice, check_int, check_rate, check_seed,
)

_DATA_FORMATS = ("channels_last", "channels_first")
_NEWTON_STEPS = 20


def _coverage_counts(xp: types.ModuleType, size: Tensor | float,
                     block_size: int) -> Tensor:
    """How many pixels of one axis are covered by exactly `a` block starts.

    Block starts (top-left corners) range over `[0, size - block_size]`, so
    pixel `i` is covered by `n_i = min(i + 1, block_size, size - i,
    size - block_size + 1)` of them. Returns `c` of shape `(block_size,)`
    with `c[a - 1] = #{i : n_i = a}`. `xp` is `numpy` or `keras.ops` and
    `size` a float or a float32 scalar tensor.
    """
    a = xp.arange(1, block_size + 1, dtype="float32")
    top = xp.minimum(float(block_size), size - block_size + 1.0)
    return xp.where(
        a < top, 2.0, xp.where(a == top, size - 2.0 * (top - 1.0), 0.0)
    )


def _solve_gamma(xp: types.ModuleType, rate: float, height: Tensor | float,
                 width: Tensor | float, block_size: int) -> Tensor:
    weights = (
        _coverage_counts(xp, height, block_size)[:, None]
        * _coverage_counts(xp, width, block_size)[None, :]
        / (height * width)
    )
    a = xp.arange(1, block_size + 1, dtype="float32")
    powers = a[:, None] * a[None, :]
    gamma = 1.0 - (1.0 - rate) ** (1.0 / block_size**2)
    for _ in range(_NEWTON_STEPS):
        keep = 1.0 - gamma
        value = 1.0 - xp.sum(weights * keep**powers) - rate
        slope = xp.sum(weights * powers * keep ** (powers - 1.0))
        gamma = xp.clip(gamma - value / xp.maximum(slope, 1e-12), 0.0, 1.0)
    return gamma


@functools.lru_cache(maxsize=256)
def _static_gamma(rate: float, height: int, width: int,
                  block_size: int) -> float:
    return float(_solve_gamma(np, rate, float(height), float(width),
                              block_size))


def seed_probability(rate: float, height: int | Tensor, width: int | Tensor,
                     block_size: int) -> float | Tensor:
    """The block-start probability that drops a fraction `rate` on average.

    A pixel covered by `k` possible block starts, each drawn with
    probability `gamma`, is dropped with probability `1 - (1 - gamma)**k`.
    The expected dropped fraction is therefore
    `f(gamma) = 1 - sum_ab w_ab (1 - gamma)**(a * b)` where `w_ab` is the
    share of pixels covered by `a` starts along the height and `b` along the
    width. `f` is increasing and concave, so Newton's method started below
    the root (at the interior solution `1 - (1 - rate)**(1 / block_size**2)`)
    climbs to it monotonically. The paper's formula
    `rate / block_size**2 * H * W / ((H - block_size + 1) * (W - block_size
    + 1))` ignores overlapping blocks and drops less than `rate`.

    Args:
        rate: Target fraction of dropped pixels, in [0, 1).
        height: Feature-map height (int, or scalar tensor when dynamic).
        width: Feature-map width (int, or scalar tensor when dynamic).
        block_size: Side of the square blocks (int, at most height, width).

    Returns:
        A Python float for int sizes (computed once and cached), else a
        float32 scalar tensor, in [0, 1].
    """
    if isinstance(height, int) and isinstance(width, int):
        return _static_gamma(float(rate), height, width, block_size)
    return _solve_gamma(
        ops, rate, ops.cast(height, "float32"), ops.cast(width, "float32"),
        block_size,
    )


def drop_block(
    x: Tensor,
    rate: float,
    block_size: int,
    seed: int | keras.random.SeedGenerator | None = None,
    data_format: str = "channels_last",
) -> Tensor:
    """Drops square `block_size x block_size` blocks of each feature map.

    Each sample and each channel get their own mask (as in the paper, per
    feature map). Block starts are drawn only where the whole block fits
    inside the map, with the probability from `seed_probability`, so the
    expected fraction of dropped units equals `rate`, overlaps included.
    Kept units are scaled by `count / kept` over the whole batch, which
    keeps the mean activation unchanged.

    A `block_size` larger than the feature map is clipped to the map's
    smaller side (when the spatial size is known when tracing); a block as
    large as the map drops whole feature maps, like SpatialDropout2D. If the
    spatial size is only known at run time (TensorFlow graphs with `None`
    dimensions), `block_size` is not clipped and a map smaller than the
    block is left unchanged.

    Args:
        x: A 4D tensor.
        rate: Fraction of units to drop, in [0, 1).
        block_size: Positive integer side of the dropped squares.
        seed: An int, a `keras.random.SeedGenerator` or `None`.
            Defaults to `None`.
        data_format: `"channels_last"` or `"channels_first"`.
            Defaults to `"channels_last"`.

    Returns:
        A tensor shaped and typed like `x`.
    """
    x = ops.convert_to_tensor(x)
    if rate == 0:
        return x
    shape = ops.shape(x)
    if data_format == "channels_first":
        height, width = shape[2], shape[3]
    else:
        height, width = shape[1], shape[2]
    xp = ops  # sizes known only at run time
    if isinstance(height, int) and isinstance(width, int):
        block_size = min(block_size, height, width)
        xp = np  # static sizes: the region where blocks fit is a constant
    gamma = seed_probability(rate, height, width, block_size)

    rows = xp.arange(height)[:, None]
    cols = xp.arange(width)[None, :]
    fits = xp.logical_and(
        rows <= height - block_size, cols <= width - block_size
    )
    fits = fits[None, None] if data_format == "channels_first" else (
        fits[None, :, :, None]
    )
    starts = keras.random.uniform(shape, seed=seed) < gamma
    starts = ops.cast(ops.logical_and(starts, fits), "float32")
    # A start at (i, j) covers rows i..i+b-1 and cols j..j+b-1: pad b-1
    # zeros before each spatial axis and take a `valid` max over b x b.
    pad = [(0, 0), (block_size - 1, 0), (block_size - 1, 0), (0, 0)]
    if data_format == "channels_first":
        pad = [(0, 0), (0, 0), (block_size - 1, 0), (block_size - 1, 0)]
    blocks = ops.max_pool(
        ops.pad(starts, pad), block_size, strides=1, padding="valid",
        data_format=data_format,
    )
    mask = 1.0 - blocks
    scale = ops.cast(ops.size(mask), "float32") / ops.maximum(
        ops.sum(mask), 1.0
    )
    return x * ops.cast(mask * scale, x.dtype)


@register
class DropBlock2D(keras.layers.Layer):
    """Drops contiguous square regions of convolutional feature maps.

    Units in a conv feature map are spatially correlated, so plain dropout
    barely removes information; DropBlock drops `block_size x block_size`
    squares instead. Every sample and channel gets its own mask (the
    paper's per-feature-map variant). The expected fraction of dropped units
    is `rate`, with block overlaps taken into account (the paper's gamma
    formula under-drops), and kept units are rescaled by `count / kept`.
    A `block_size` larger than the feature map is clipped to the map's
    smaller side; see `drop_block`. At inference the layer is the identity.

    Args:
        rate: Float in [0, 1). Expected fraction of units to drop.
        block_size: Positive integer side of the dropped squares. The paper
            uses 7 on 14x14 maps.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `None` (`keras.config.image_data_format()`).
        seed: Optional non-negative integer seed. Defaults to `None`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: A 4D tensor.
        training: Python boolean; blocks are dropped only when `True`.

    Example:

    >>> inputs = keras.Input((32, 32, 3))
    >>> x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(
    ...     inputs)
    >>> x = DropBlock2D(0.1, block_size=5, seed=1)(x)

    References:
        - [Ghiasi et al., 2018](https://arxiv.org/abs/1810.12890)
    """

    def __init__(self, rate: float, block_size: int,
                 data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.block_size = check_int("block_size", block_size, 1)
        self.data_format = check_choice(
            "data_format",
            keras.config.image_data_format()
            if data_format is None else data_format,
            _DATA_FORMATS,
        )
        self.seed = check_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.input_spec = keras.InputSpec(ndim=4)
        self.supports_masking = True

    def call(self, inputs: Tensor, training: bool | None = False) -> Tensor:
        if not training:
            return inputs
        return drop_block(
            inputs, self.rate, self.block_size, seed=self.seed_generator,
            data_format=self.data_format,
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rate": self.rate,
            "block_size": self.block_size,
            "data_format": self.data_format,
            "seed": self.seed,
        }
