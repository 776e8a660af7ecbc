"""Stochastic depth (drop-path): drops whole residual branches per sample."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Shape, Tensor
from keras_regkit._validation import check_rate, check_seed, invalid


def drop_path(
    x: Tensor,
    rate: float,
    seed: int | keras.random.SeedGenerator | None = None,
    scale_by_keep: bool = True,
) -> Tensor:
    """Zeroes the whole of `x` for a random subset of the samples.

    One Bernoulli draw per sample (the first axis) is broadcast over every
    other axis: a sample's branch is kept with probability `1 - rate` and
    otherwise set to zero. Kept samples are divided by `1 - rate` when
    `scale_by_keep`, so the expected output equals `x`.

    Args:
        x: A tensor whose first axis is the batch.
        rate: Probability of dropping a sample's branch, in [0, 1).
        seed: An int, a `keras.random.SeedGenerator` or `None`.
            Defaults to `None`.
        scale_by_keep: Whether to divide kept samples by `1 - rate`.
            Defaults to `True`.

    Returns:
        A tensor shaped and typed like `x`.
    """
    x = ops.convert_to_tensor(x)
    if rate == 0:
        return x
    keep_prob = 1.0 - rate
    mask_shape = (ops.shape(x)[0],) + (1,) * (ops.ndim(x) - 1)
    keep = keras.random.uniform(mask_shape, seed=seed) >= rate
    mask = ops.cast(keep, x.dtype)
    if scale_by_keep:
        mask = mask / ops.cast(keep_prob, x.dtype)
    return x * mask


@register
class StochasticDepth(keras.layers.Layer):
    """Randomly drops a residual branch for whole samples (drop-path).

    Put it on the residual branch, before the addition:
    `x = shortcut + StochasticDepth(0.1)(branch)`. During training each
    sample's branch is either zeroed (probability `rate`) or kept and scaled
    by `1 / (1 - rate)`, so the block reduces to the identity shortcut for
    the dropped samples. At inference the layer is the identity.

    Args:
        rate: Float in [0, 1). Probability of dropping the branch of a
            sample.
        seed: Optional non-negative integer seed. Defaults to `None`.
        scale_by_keep: Whether kept branches are divided by `1 - rate`,
            which preserves their mean. Defaults to `True`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: The residual branch, a tensor of rank >= 1 (batch first).
        training: Python boolean; branches are dropped only when `True`.

    Example:

    >>> inputs = keras.Input((32, 32, 16))
    >>> branch = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    >>> outputs = inputs + StochasticDepth(0.1, seed=1)(branch)

    References:
        - [Huang et al., 2016](https://arxiv.org/abs/1603.09382)
    """

    def __init__(self, rate: float, seed: int | None = None,
                 scale_by_keep: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.seed = check_seed("seed", seed)
        if not isinstance(scale_by_keep, bool):
            raise invalid("scale_by_keep", scale_by_keep, "a bool")
        self.scale_by_keep = scale_by_keep
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs: Tensor, training: bool | None = False) -> Tensor:
        if not training:
            return inputs
        return drop_path(
            inputs, self.rate, seed=self.seed_generator,
            scale_by_keep=self.scale_by_keep,
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rate": self.rate,
            "seed": self.seed,
            "scale_by_keep": self.scale_by_keep,
        }
