"""GaussianWeightNoise: additive Gaussian noise on a Dense or Conv kernel."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Tensor
from keras_regkit._validation import check_positive
from keras_regkit.layers._kernel_wrapper import KernelPerturbation


def gaussian_weight_noise(
    kernel: Tensor,
    stddev: float,
    seed: int | keras.random.SeedGenerator | None = None,
) -> Tensor:
    """Adds zero-mean Gaussian noise of standard deviation `stddev`.

    Args:
        kernel: the weight tensor.
        stddev: positive float, the standard deviation of the noise.
        seed: an int, a `keras.random.SeedGenerator` or `None`. Defaults to
            `None`.

    Returns:
        `kernel + N(0, stddev^2)`, drawn independently for every entry.
    """
    noise = keras.random.normal(
        ops.shape(kernel), stddev=stddev, dtype=kernel.dtype, seed=seed
    )
    return ops.add(kernel, noise)


@register
class GaussianWeightNoise(KernelPerturbation):
    """Adds Gaussian noise to the wrapped layer's kernel during training.

    `keras.layers.GaussianNoise` perturbs activations; this wrapper perturbs
    the weights instead: every training call draws fresh noise
    `N(0, stddev^2)` for each kernel entry and computes the wrapped layer's
    own operation (bias, activation, strides, padding...) with the noisy
    kernel. At inference the output is exactly the wrapped layer's. The
    wrapper adds no trainable weight of its own.

    Its cost grows with the kernel's size: see `KernelPerturbation` in
    `layers/_kernel_wrapper.py` (XLA on a CPU is slow for it).

    Args:
        layer: a `keras.layers.Dense`, `Conv1D`, `Conv2D` or `Conv3D`
            instance (convolutions with `groups=1`).
        stddev: positive float, the standard deviation of the weight noise.
        seed: optional int seed for the noise. Defaults to `None`.
        **kwargs: base layer keyword arguments (e.g. `name`).

    Call arguments:
        inputs: the wrapped layer's input.
        training: Python boolean, whether to add noise. Defaults to `None`
            (no noise).

    Example:

    >>> layer = GaussianWeightNoise(keras.layers.Conv2D(8, 3), stddev=0.01)
    >>> tuple(layer(np.ones((1, 8, 8, 3)), training=True).shape)
    (1, 6, 6, 8)

    References:
        - [Graves, 2011](https://papers.nips.cc/paper/4329): Practical
          Variational Inference for Neural Networks.
        - [An, 1996](https://doi.org/10.1162/neco.1996.8.3.643): The Effects
          of Adding Noise During Backpropagation Training on a Generalization
          Performance.
    """

    def __init__(self, layer: keras.layers.Layer, stddev: float,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(layer, seed=seed, **kwargs)
        self.stddev = check_positive("stddev", stddev)

    def perturb_kernel(self, kernel: Tensor) -> Tensor:
        return gaussian_weight_noise(kernel, self.stddev, self.seed_generator)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev}
