"""Convolution, batch norm and GELU that run on TensorFlow's fast CPU kernels.

Keras 3 writes `BatchNormalization` and `gelu` from elementary ops on every
backend. On TensorFlow's CPU, under `mixed_bfloat16`, that costs more than
the convolutions around them: each elementwise op over a bfloat16 tensor is
an Eigen kernel that converts every element to float32 and back, and batch
norm's moments, normalization and gradient take a dozen of them. And
oneDNN's kernel-gradient primitive for a convolution runs slowly on small
feature maps. These layers compute the same functions with faster kernels:

- `FusedBatchNormalization` trains through TensorFlow's fused batch-norm
  op (oneDNN's on the CPU): one kernel forward and one backward, with the
  statistics in float32 whatever the input's dtype.
- `GELU` computes in float32 under a 16-bit policy and, on TensorFlow,
  differentiates in closed form (`Phi(x) + x * phi(x)`), each direction
  one XLA-fused loop over the tensor instead of a chain of elementwise
  kernels.
- `FastConv2D` takes a small bfloat16 map's kernel gradient as matmuls of
  shifted input windows, which oneDNN runs at full speed.

In the `fast` preset's network (batch 1024, mixed bfloat16, 2 cores of an
Intel Xeon with AMX) the first two took a training step from 2.0 s to
1.0 s (`python bench/bench_ceiling.py --compare-layers`), and the third
made it 1.07-1.11x faster again (`--compare-kernel-gradients`). On JAX and
PyTorch, whose compilers or fused kernels already do this, they are
Keras's own layers and functions.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Shape, Tensor

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_FUSED_DTYPES = ("float32", "bfloat16", "float16")


def _gelu_float32(x: Tensor, approximate: bool,
                  training: bool = False) -> Tensor:
    """GELU of a tensor of any float dtype, in float32 or wider.

    On TensorFlow, in training, the exact form runs as XLA-fused functions;
    inference keeps to plain ops, so that an exported model needs no XLA.
    """
    if keras.backend.standardize_dtype(x.dtype) not in _FUSED_DTYPES:
        return keras.activations.gelu(x, approximate=approximate)  # float64
    if (training and keras.backend.backend() == "tensorflow"
            and not approximate):
        return _tf_exact_gelu(x)
    y = keras.activations.gelu(ops.cast(x, "float32"), approximate=approximate)
    return ops.cast(y, x.dtype)


def _tf_exact_gelu(x: Tensor) -> Tensor:
    import tensorflow as tf

    forward, backward = _tf_gelu_functions()

    @tf.custom_gradient
    def gelu(inputs: Tensor) -> Any:
        def grad(upstream: Tensor) -> Tensor:
            return backward(inputs, upstream)

        return forward(inputs), grad

    return gelu(x)


@functools.cache
def _tf_gelu_functions() -> tuple[Any, Any]:
    """GELU and its input gradient as TensorFlow functions.

    Each is compiled by XLA into one loop over the tensor (elementwise
    fusion): as separate TensorFlow ops, the forward pass is six kernels
    and the gradient nine, each a full pass over memory. The gradient
    recomputes `erfc` from the input rather than keeping a float32 copy.
    Where XLA cannot compile here, they run as plain TensorFlow ops.
    """
    import tensorflow as tf

    def forward(x: Tensor) -> Tensor:
        x32 = tf.cast(x, tf.float32)
        return tf.cast(x32 * 0.5 * tf.math.erfc(x32 * -_SQRT_HALF), x.dtype)

    def backward(x: Tensor, upstream: Tensor) -> Tensor:
        x32 = tf.cast(x, tf.float32)
        derivative = (0.5 * tf.math.erfc(x32 * -_SQRT_HALF)
                      + x32 * tf.exp(-0.5 * x32 * x32) * _INV_SQRT_2PI)
        return tf.cast(tf.cast(upstream, tf.float32) * derivative, x.dtype)

    # No AutoGraph: straight-line code, and it cannot convert functions
    # whose closure holds the `tf` imported above.
    compiled = tuple(tf.function(fn, jit_compile=True, reduce_retracing=True,
                                 autograph=False)
                     for fn in (forward, backward))
    try:
        # Eagerly, even when the first GELU is called while Keras builds a
        # graph: only running them shows that XLA can compile here.
        with tf.init_scope():
            probe = tf.constant([-1.0, 0.5])
            compiled[0](probe).numpy()
            compiled[1](probe, probe).numpy()
    except Exception:  # noqa: BLE001 - a TensorFlow built without XLA
        return forward, backward
    return compiled


@register
class GELU(keras.layers.Layer):
    """The GELU activation, computed in float32 under mixed precision.

    `x * Phi(x)`, where `Phi` is the standard normal CDF; with
    `approximate=True`, its tanh approximation. The same function as
    `keras.layers.Activation("gelu")`, with the arithmetic in float32 even
    when the layer's inputs are bfloat16 or float16 (the output keeps the
    input's dtype): more accurate, and on TensorFlow's CPU faster, since
    Eigen's 16-bit elementwise kernels convert every element anyway. On
    TensorFlow, in training, the exact form and its closed-form gradient
    each run as one XLA-compiled function inside the surrounding graph,
    which XLA fuses into a single loop; inference runs plain TensorFlow
    ops (the same maths), so an exported model does not need XLA.

    Args:
        approximate: use the tanh approximation. Defaults to `False`.
        **kwargs: base `Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: a float tensor of any shape.
        training: whether the call is in training (the XLA path above).

    Example:

    >>> y = GELU()(keras.ops.convert_to_tensor([-1.0, 0.0, 1.0]))
    >>> [round(float(v), 4) for v in y]
    [-0.1587, 0.0, 0.8413]

    References:
        Dan Hendrycks, Kevin Gimpel, "Gaussian Error Linear Units (GELUs)",
        2016.
    """

    def __init__(self, approximate: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(approximate, bool):
            raise ValueError(
                "Invalid value received for argument `approximate`. Expected "
                f"True or False. Received: approximate={approximate!r}"
            )
        self.approximate = approximate
        self.supports_masking = True

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        return _gelu_float32(inputs, self.approximate, bool(training))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"approximate": self.approximate})
        return config


@register
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that trains on a fused kernel.

    The same layer, arguments, weights and results as Keras's (outputs and
    moving statistics agree to float rounding), with one difference in how
    it runs: on the TensorFlow backend, in training, on 4-D channels-last
    inputs, it calls TensorFlow's fused batch-norm op instead of Keras's
    composite of moments, normalization and their gradients. That op is
    one oneDNN kernel on the CPU (one cuDNN kernel on a GPU) each way, and
    keeps its statistics in float32 for bfloat16 and float16 inputs. Every
    other case (inference, JAX or PyTorch, other ranks or axes, masks,
    `renorm`, `synchronized`, float64) is Keras's own code. It takes
    `keras.layers.BatchNormalization`'s arguments.

    Example:

    >>> x = keras.Input((8, 8, 16))
    >>> y = FusedBatchNormalization(momentum=0.9, scale=False)(x)
    >>> tuple(y.shape)
    (None, 8, 8, 16)
    """

    def _fused(self, inputs: Tensor, training: Any, mask: Any) -> bool:
        return bool(
            training and self.trainable and mask is None
            and keras.backend.backend() == "tensorflow"
            and not self.renorm and not self.synchronized
            and len(inputs.shape) == 4 and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype)
            in _FUSED_DTYPES
        )

    def call(self, inputs: Tensor, training: Any = None,
             mask: Any = None) -> Tensor:
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = (tf.cast(self.gamma, tf.float32) if self.scale
                 else tf.ones([channels], tf.float32))
        offset = (tf.cast(self.beta, tf.float32) if self.center
                  else tf.zeros([channels], tf.float32))
        empty = tf.constant([], tf.float32)
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=scale, offset=offset, mean=empty,
            variance=empty, epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        # The op returns the unbiased variance (n / (n - 1) times the one it
        # normalized with); Keras's moving variance averages the biased one.
        count = tf.cast(tf.size(inputs, out_type=tf.int64) // channels,
                        tf.float32)
        variance = variance * ((count - 1.0) / tf.maximum(count, 1.0))
        self._update_moving(self.moving_mean, mean)
        self._update_moving(self.moving_variance, variance)
        return ops.cast(outputs, self.compute_dtype)

    def _update_moving(self, variable: Any, batch_value: Tensor) -> None:
        value = ops.cast(batch_value, variable.dtype)
        variable.assign(variable * self.momentum
                        + value * (1.0 - self.momentum))


# Below this many output positions per image (a 7x7 map has 49, a 15x15
# map 225), "auto" takes the kernel gradient of a bfloat16 convolution as
# matmuls; see `FastConv2D`.
SHIFTED_GRADIENT_MAX_POSITIONS = 64
KERNEL_GRADIENTS = ("auto", "shifted_matmuls", "native")


def shifted_kernel_gradient(inputs: Tensor, upstream: Tensor,
                            kernel_shape: tuple[int, int, int, int],
                            padding: str) -> Tensor:
    """A stride-1 NHWC convolution's kernel gradient, as matmuls.

    For each kernel offset `(i, j)`, the gradient is the matmul of the
    input window at that offset, as a `(positions, in)` matrix, with the
    upstream gradient as a `(positions, out)` matrix: `kh * kw` matmuls
    that reduce over every position of the batch. TensorFlow only.

    Args:
        inputs: the convolution's input, `(batch, height, width, in)`.
        upstream: the gradient of its output, `(batch, out_h, out_w, out)`.
        kernel_shape: `(kh, kw, in, out)`.
        padding: `"same"` or `"valid"` (as the forward pass used).

    Returns:
        The kernel's gradient, of `kernel_shape`, in the inputs' dtype.
    """
    import tensorflow as tf

    kh, kw, channels, filters = kernel_shape
    if padding == "same":
        top, left = (kh - 1) // 2, (kw - 1) // 2
        inputs = tf.pad(inputs, [[0, 0], [top, kh - 1 - top],
                                 [left, kw - 1 - left], [0, 0]])
    out_h, out_w = upstream.shape[1], upstream.shape[2]
    upstream = tf.reshape(upstream, (-1, filters))
    rows = []
    for i in range(kh):
        for j in range(kw):
            window = tf.reshape(inputs[:, i:i + out_h, j:j + out_w, :],
                                (-1, channels))
            rows.append(tf.matmul(window, upstream, transpose_a=True))
    return tf.reshape(tf.stack(rows), kernel_shape)


@functools.cache
def _tf_sees_an_accelerator() -> bool:
    """Whether TensorFlow has a GPU or TPU to place convolutions on."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU")
                or tf.config.list_physical_devices("TPU"))


def _tf_conv_shifted_gradient(inputs: Tensor, kernel: Tensor,
                              padding: str) -> Tensor:
    import tensorflow as tf

    @tf.custom_gradient
    def conv(x: Tensor, k: Tensor) -> Any:
        def grad(upstream: Tensor) -> tuple[Tensor, Tensor]:
            dx = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=k, out_backprop=upstream,
                strides=[1, 1, 1, 1], padding=padding.upper())
            return dx, shifted_kernel_gradient(
                x, upstream, tuple(k.shape.as_list()), padding)

        return tf.nn.conv2d(x, k, 1, padding.upper()), grad

    # A tensor, not the variable: its gradient then flows back through
    # the read (and the cast, under mixed precision) to the variable.
    return conv(inputs, tf.convert_to_tensor(kernel))


@register
class FastConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose kernel gradient can run as matmuls.

    The same layer, arguments, weights and outputs as Keras's, with one
    difference in training on TensorFlow: for a stride-1, undilated,
    ungrouped, channels-last convolution it can compute the kernel's
    gradient as `kh * kw` matmuls of shifted input windows with the
    upstream gradient (`shifted_kernel_gradient`) instead of TensorFlow's
    `Conv2DBackpropFilter`. On small feature maps in bfloat16, oneDNN's
    kernel-gradient primitive is several times slower than its matmul: on
    2 cores of an Intel Xeon with AMX, a batch of 1,024 7x7x256 maps into
    256 filters took 104 ms there and 57 ms as matmuls, 3x3 maps 49 ms and
    11 ms, while at 15x15 the primitive won (51 against 107 ms), and in
    float32 it won at 7x7 as well.

    Args:
        *args: `keras.layers.Conv2D`'s arguments.
        kernel_gradient: `"native"` (TensorFlow's op), `"shifted_matmuls"`
            (wherever the convolution allows it), or `"auto"`: the matmuls
            for a bfloat16 convolution with at most
            `SHIFTED_GRADIENT_MAX_POSITIONS` (64) output positions per
            image when TensorFlow sees no GPU or TPU (measured on CPUs
            only), the op otherwise. Defaults to `"auto"`. JAX and PyTorch
            always differentiate the convolution their own way.
        **kwargs: `keras.layers.Conv2D`'s keyword arguments.

    Example:

    >>> layer = FastConv2D(8, 3, padding="same")
    >>> tuple(layer(np.zeros((2, 5, 5, 4), "float32")).shape)
    (2, 5, 5, 8)
    """

    def __init__(self, *args: Any, kernel_gradient: str = "auto",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kernel_gradient not in KERNEL_GRADIENTS:
            raise ValueError(
                "Invalid value received for argument `kernel_gradient`. "
                f"Expected one of {KERNEL_GRADIENTS}. "
                f"Received: kernel_gradient={kernel_gradient!r}")
        self.kernel_gradient = kernel_gradient
        self._in_training_call = False

    def _shifted(self, inputs: Tensor) -> bool:
        if (self.kernel_gradient == "native" or not self._in_training_call
                or keras.backend.backend() != "tensorflow"
                or self.data_format != "channels_last"
                or self.groups != 1 or tuple(self.strides) != (1, 1)
                or tuple(self.dilation_rate) != (1, 1)):
            return False
        if self.kernel_gradient == "shifted_matmuls":
            return True
        height, width = inputs.shape[1], inputs.shape[2]
        if height is None or width is None:
            return False
        kh, kw = self.kernel_size
        if self.padding == "valid":
            height, width = height - kh + 1, width - kw + 1
        return (keras.backend.standardize_dtype(inputs.dtype) == "bfloat16"
                and height * width <= SHIFTED_GRADIENT_MAX_POSITIONS
                and not _tf_sees_an_accelerator())

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        self._in_training_call = bool(training)
        try:
            return super().call(inputs)
        finally:
            self._in_training_call = False

    def convolution_op(self, inputs: Tensor, kernel: Tensor) -> Tensor:
        if not self._shifted(inputs):
            return super().convolution_op(inputs, kernel)
        return _tf_conv_shifted_gradient(inputs, kernel, self.padding)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"kernel_gradient": self.kernel_gradient})
        return config
