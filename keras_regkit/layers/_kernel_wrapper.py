"""The private base of the layers that wrap a Dense or Conv kernel.

`KernelPerturbation` calls the wrapped layer's own operation with a
perturbed kernel in training (DropConnect, GaussianWeightNoise);
`check_kernel_layer` and `wrapper_from_config` serve every kernel wrapper
(ConcreteDropout too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import keras
from keras import ops

from keras_regkit._typing import Shape, Tensor
from keras_regkit._validation import check_seed
from keras_regkit._validation import invalid

if TYPE_CHECKING:
    from typing_extensions import Self

_T = TypeVar("_T")

_KERNEL_LAYERS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)
_ALLOWED = "a keras.layers.Dense, Conv1D, Conv2D or Conv3D instance"


def check_kernel_layer(layer: keras.layers.Layer,
                       allow_groups: bool = False) -> keras.layers.Layer:
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


def call_with_kernel(layer: keras.layers.Layer, inputs: Tensor,
                     kernel: Tensor) -> Tensor:
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


def wrapper_from_config(cls: Callable[..., _T], config: dict[str, Any],
                        custom_objects: dict[str, Any] | None = None) -> _T:
    """Rebuilds a wrapper from its config without mutating `config`."""
    config = dict(config)
    layer = keras.saving.deserialize_keras_object(
        config.pop("layer"), custom_objects=custom_objects
    )
    return cls(layer, **config)



class KernelPerturbation(keras.layers.Wrapper):
    """Base of the wrappers that perturb a Dense/Conv kernel in training.

    Subclasses implement `perturb_kernel(kernel)`. At inference (and for
    `training=None`) the wrapped layer is called unchanged. The wrapper adds
    a seed generator and no weight of its own.

    Each training step draws one random number per kernel entry, so its
    cost grows with the kernel's size. Under TensorFlow with
    `jit_compile=True` on a CPU, XLA's default random-number generator is
    slow (`bench/bench_layers.py --jit` measures about 4x the step time of
    Dense+Dropout); Keras's default `jit_compile="auto"` leaves XLA off on
    CPUs, where the overhead is under 10%.
    """

    def __init__(self, layer: keras.layers.Layer, seed: int | None = None,
                 **kwargs: Any) -> None:
        check_kernel_layer(layer)
        super().__init__(layer, **kwargs)
        self.seed = check_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def perturb_kernel(self, kernel: Tensor) -> Tensor:
        raise NotImplementedError

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        if not training:
            return self.layer(inputs)
        kernel = self.perturb_kernel(self.layer.kernel)
        outputs = call_with_kernel(self.layer, inputs, kernel)
        if self.layer.activity_regularizer is not None:
            self.add_loss(self.layer.activity_regularizer(outputs))
        return outputs

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.layer.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> Self:
        return wrapper_from_config(cls, config, custom_objects)
