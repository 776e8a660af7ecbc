"""ScaledBias: a per-channel bias that SGD trains `lr_multiplier` times faster.

Keras optimizers have one learning rate for every variable. airbench (Jordan
2024) trains the batch-norm biases with a learning rate 64 times the
weights'. The same effect, on any backend and optimizer step, comes from a
reparametrization: store `b / s` and use `s * stored`. A gradient step on the
stored value moves the bias by `s**2` times as much, so `s =
sqrt(lr_multiplier)`. Decoupled weight decay (`v -= lr * wd * v`) shrinks the
stored value and the bias by the same factor, so the decay is unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Shape, Tensor
from keras_regkit._validation import check_positive


@register
class ScaledBias(keras.layers.Layer):
    """Adds a learned per-channel bias with its own learning-rate multiplier.

    Put it after `BatchNormalization(center=False)` to give the batch-norm
    shift its own learning rate (exact for SGD with or without momentum,
    where the multiplier applies to the step; under Adam, whose steps are
    scale-free, the bias moves `sqrt(lr_multiplier)` times faster).

    Args:
        lr_multiplier: learning-rate multiplier of the bias, > 0. Defaults
            to `1.0` (a plain bias).
        axis: the channel axis. Defaults to `-1`.
        **kwargs: base `Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: a tensor whose `axis` has a fixed size.

    Example:

    >>> x = keras.layers.BatchNormalization(center=False)(keras.Input((8,)))
    >>> y = ScaledBias(lr_multiplier=64.0)(x)

    References:
        Keller Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU",
        2024 (the 64x batch-norm bias learning rate).
    """

    def __init__(self, lr_multiplier: float = 1.0, axis: int = -1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lr_multiplier = check_positive("lr_multiplier", lr_multiplier)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(
                "Invalid value received for argument `axis`. Expected an "
                f"int. Received: axis={axis!r}"
            )
        self.axis = axis
        self.scale = math.sqrt(self.lr_multiplier)

    def build(self, input_shape: Shape) -> None:
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(
                "Invalid value received for argument `input_shape`. Expected "
                f"a fixed size on axis {self.axis}. Received: "
                f"input_shape={input_shape}"
            )
        self.bias = self.add_weight(
            shape=(channels,), initializer="zeros", name="scaled_bias"
        )

    @property
    def effective_bias(self) -> Tensor:
        """The bias actually added: `sqrt(lr_multiplier) * stored`."""
        return ops.multiply(self.bias, self.scale)

    def call(self, inputs: Tensor) -> Tensor:
        bias = ops.cast(self.bias * self.scale, inputs.dtype)
        if self.axis not in (-1, len(inputs.shape) - 1):
            shape = [1] * len(inputs.shape)
            shape[self.axis] = -1
            bias = ops.reshape(bias, shape)
        return inputs + bias

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"lr_multiplier": self.lr_multiplier, "axis": self.axis})
        return config
