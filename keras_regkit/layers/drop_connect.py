"""DropConnect: drops individual weights of a Dense or Conv kernel."""

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._validation import check_int
from keras_regkit._validation import check_rate
from keras_regkit._validation import check_seed
from keras_regkit._validation import invalid

_KERNEL_LAYERS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)
_ALLOWED = "a keras.layers.Dense, Conv1D, Conv2D or Conv3D instance"


def _check_kernel_layer(layer, allow_groups=False):
    """Raises unless `layer` is a Dense or an ungrouped Conv1D/2D/3D layer."""
    if not isinstance(layer, _KERNEL_LAYERS):
        error = invalid("layer", layer, _ALLOWED, error=TypeError)
        raise TypeError(f"{error} (of type {type(layer).__name__})")
    groups = getattr(layer, "groups", 1)
    if groups != 1 and not allow_groups:
        raise invalid(
            "layer",
            layer,
            f"{_ALLOWED} with groups=1 (got {type(layer).__name__} with "
            f"groups={groups})",
        )
    return layer


def _call_with_kernel(layer, inputs, kernel):
    """Applies a Dense or Conv `layer` to `inputs` with `kernel` as its kernel.

    Everything else is the layer's own: bias, activation and, for
    convolutions, strides, padding (causal included), dilation and data
    format. This is the one place the layer's operation is re-implemented;
    with `kernel=layer.kernel` it returns `layer.call(inputs)`.
    """
    if getattr(layer, "quantization_mode", None):
        raise ValueError(
            f"Layer {layer.name!r} is quantized "
            f"({layer.quantization_mode}); weight perturbation needs a float "
            "kernel."
        )
    kernel = ops.cast(kernel, inputs.dtype)
    if isinstance(layer, keras.layers.Dense):
        outputs = ops.matmul(inputs, kernel)
        channel_axis = -1
    else:
        channel_axis = -1 if layer.data_format == "channels_last" else 1
        padding = layer.padding
        if padding == "causal":
            time_axis = 1 if layer.data_format == "channels_last" else 2
            pad = [[0, 0], [0, 0], [0, 0]]
            left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
            pad[time_axis] = [left, 0]
            inputs = ops.pad(inputs, pad)
            padding = "valid"
        outputs = ops.conv(
            inputs,
            kernel,
            strides=list(layer.strides),
            padding=padding,
            dilation_rate=layer.dilation_rate,
            data_format=layer.data_format,
        )
    if layer.use_bias:
        bias_shape = [1] * len(outputs.shape)
        bias_shape[channel_axis] = -1
        bias = ops.reshape(ops.cast(layer.bias, outputs.dtype), bias_shape)
        outputs = ops.add(outputs, bias)
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


def _wrapper_from_config(cls, config, custom_objects=None):
    """Rebuilds a wrapper from its config without mutating `config`."""
    config = dict(config)
    layer = keras.saving.deserialize_keras_object(
        config.pop("layer"), custom_objects=custom_objects
    )
    return cls(layer, **config)


def drop_connect_kernel(kernel, rate, seed=None):
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


class _KernelPerturbation(keras.layers.Wrapper):
    """Base of the wrappers that perturb a Dense/Conv kernel in training.

    Subclasses implement `perturb_kernel(kernel)`. At inference (and for
    `training=None`) the wrapped layer is called unchanged. The wrapper adds
    a seed generator and no weight of its own.
    """

    def __init__(self, layer, seed=None, **kwargs):
        _check_kernel_layer(layer)
        super().__init__(layer, **kwargs)
        self.seed = check_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def perturb_kernel(self, kernel):
        raise NotImplementedError

    def call(self, inputs, training=None):
        if not training:
            return self.layer(inputs)
        kernel = self.perturb_kernel(self.layer.kernel)
        outputs = _call_with_kernel(self.layer, inputs, kernel)
        if self.layer.activity_regularizer is not None:
            self.add_loss(self.layer.activity_regularizer(outputs))
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return _wrapper_from_config(cls, config, custom_objects)


@register
class DropConnect(_KernelPerturbation):
    """Drops individual weights of the wrapped layer's kernel in training.

    In training every call draws one Bernoulli keep mask over the kernel
    (shared by the examples of the batch), scales the kept weights by
    `1 / (1 - rate)` and computes the wrapped layer's own operation with
    that kernel. At inference the output is exactly the wrapped layer's.
    The wrapper has no trainable weights of its own.

    Each training step draws one random number per kernel entry, so its
    cost grows with the kernel's size. Under TensorFlow with
    `jit_compile=True` on a CPU, XLA's default random-number generator is
    slow (`bench/bench_layers.py --jit` measures about 4x the step time of
    Dense+Dropout); Keras's default `jit_compile="auto"` leaves XLA off on
    CPUs, where the overhead is under 10%.

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

    def __init__(self, layer, rate, seed=None, **kwargs):
        super().__init__(layer, seed=seed, **kwargs)
        self.rate = check_rate("rate", rate)

    def perturb_kernel(self, kernel):
        return drop_connect_kernel(kernel, self.rate, self.seed_generator)

    def get_config(self):
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

    def __init__(self, units, rate, seed=None, **kwargs):
        units = check_int("units", units, 1)
        rate = check_rate("rate", rate)
        seed = check_seed("seed", seed)
        super().__init__(units, **kwargs)
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return super().call(inputs)
        kernel = drop_connect_kernel(
            self.kernel, self.rate, self.seed_generator
        )
        return _call_with_kernel(self, inputs, kernel)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
