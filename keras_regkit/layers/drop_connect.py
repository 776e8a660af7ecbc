"""DropConnect: drops individual weights of a Dense or Conv kernel."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Tensor
from keras_regkit.layers._kernel_wrapper import KernelPerturbation
from keras_regkit.layers._kernel_wrapper import call_with_kernel
from keras_regkit._validation import check_int
from keras_regkit._validation import check_rate
from keras_regkit._validation import check_seed

def drop_connect_kernel(
    kernel: Tensor,
    rate: float,
    seed: int | keras.random.SeedGenerator | None = None,
) -> Tensor:
    """Drops kernel entries independently with probability `rate`.

    Each entry is kept with probability `1 - rate` (a Bernoulli mask) and
    the kept entries are scaled by `1 / (1 - rate)`, so the expected kernel
    is unchanged.

    Args:
        kernel: the weight tensor.
        rate: float in [0, 1), the probability of dropping an entry.
        seed: an int, a `keras.random.SeedGenerator` or `None`. Defaults to
            `None`.

    Returns:
        A tensor shaped and typed like `kernel`.
    """
    if rate == 0:
        return kernel
    noise = keras.random.uniform(ops.shape(kernel), seed=seed)
    keep = ops.cast(ops.greater_equal(noise, rate), kernel.dtype)
    return ops.multiply(kernel, keep) / (1.0 - rate)


@register
class DropConnect(KernelPerturbation):
    """Drops individual weights of the wrapped layer's kernel in training.

    In training every call draws one Bernoulli keep mask over the kernel
    (shared by the examples of the batch), scales the kept weights by
    `1 / (1 - rate)` and computes the wrapped layer's own operation with
    that kernel. At inference the output is exactly the wrapped layer's.
    The wrapper has no trainable weights of its own.

    Its cost grows with the kernel's size: see `KernelPerturbation` in
    `layers/_kernel_wrapper.py` (XLA on a CPU is slow for it).

    Args:
        layer: a `keras.layers.Dense`, `Conv1D`, `Conv2D` or `Conv3D`
            instance (convolutions with `groups=1`).
        rate: float in [0, 1), the probability of dropping a weight.
        seed: optional int seed for the mask. Defaults to `None`.
        **kwargs: base layer keyword arguments (e.g. `name`).

    Call arguments:
        inputs: the wrapped layer's input.
        training: Python boolean, whether to drop weights. Defaults to
            `None` (no dropping).

    Example:

    >>> layer = DropConnect(keras.layers.Dense(4), rate=0.5, seed=1)
    >>> y = layer(np.ones((2, 8)), training=True)
    >>> tuple(y.shape)
    (2, 4)

    References:
        - [Wan et al., 2013](https://proceedings.mlr.press/v28/wan13.html):
          Regularization of Neural Networks using DropConnect.
    """

    def __init__(self, layer: keras.layers.Layer, rate: float,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(layer, seed=seed, **kwargs)
        self.rate = check_rate("rate", rate)

    def perturb_kernel(self, kernel: Tensor) -> Tensor:
        return drop_connect_kernel(kernel, self.rate, self.seed_generator)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


@register
class DropConnectDense(keras.layers.Dense):
    """A `Dense` layer whose kernel weights are dropped in training.

    Same semantics as `DropConnect(keras.layers.Dense(units, ...), rate)`,
    as a single layer whose config is Dense's plus `rate` and `seed`.

    Args:
        units: positive int, dimensionality of the output.
        rate: float in [0, 1), the probability of dropping a weight.
        seed: optional int seed for the mask. Defaults to `None`.
        **kwargs: any other `keras.layers.Dense` argument (`activation`,
            `use_bias`, initializers, regularizers, `name`, ...).

    Example:

    >>> layer = DropConnectDense(16, rate=0.3, activation="relu", seed=0)
    >>> tuple(layer(np.ones((2, 8)), training=True).shape)
    (2, 16)

    References:
        - [Wan et al., 2013](https://proceedings.mlr.press/v28/wan13.html):
          Regularization of Neural Networks using DropConnect.
    """

    def __init__(self, units: int, rate: float, seed: int | None = None,
                 **kwargs: Any) -> None:
        units = check_int("units", units, 1)
        rate = check_rate("rate", rate)
        seed = check_seed("seed", seed)
        super().__init__(units, **kwargs)
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        if not training:
            return super().call(inputs)
        kernel = drop_connect_kernel(
            self.kernel, self.rate, self.seed_generator
        )
        return call_with_kernel(self, inputs, kernel)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
