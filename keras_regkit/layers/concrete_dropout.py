"""ConcreteDropout: dropout on a layer's inputs with a learned rate."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Shape, Tensor
from keras_regkit._validation import check_float
from keras_regkit._validation import check_non_negative
from keras_regkit._validation import check_positive
from keras_regkit._validation import check_seed
from keras_regkit._validation import invalid
from keras_regkit.layers._kernel_wrapper import check_kernel_layer
from keras_regkit.layers._kernel_wrapper import wrapper_from_config

if TYPE_CHECKING:
    from typing_extensions import Self

_EPSILON = 1e-7


def relaxed_dropout(
    inputs: Tensor,
    p: Tensor | float,
    temperature: float = 0.1,
    seed: int | keras.random.SeedGenerator | None = None,
) -> Tensor:
    """Relaxed (concrete) dropout of `inputs`, differentiable in `p`.

    Each entry gets a soft drop indicator
    `z = sigmoid((logit(p) + logit(u)) / temperature)` with `u ~ U(0, 1)`;
    `z > 0.5` exactly when a hard Bernoulli(p) draw would drop it, and
    `z` tends to that hard draw as `temperature` goes to 0. The output is
    `inputs * (1 - z) / (1 - p)`.

    Args:
        inputs: the tensor to drop entries of.
        p: scalar tensor or float in (0, 1), the drop probability.
        temperature: positive float, the relaxation temperature. Defaults to
            `0.1`.
        seed: an int, a `keras.random.SeedGenerator` or `None`. Defaults to
            `None`.

    Returns:
        A tensor shaped like `inputs`.
    """
    inputs = ops.convert_to_tensor(inputs)
    p = ops.cast(p, inputs.dtype)
    u = keras.random.uniform(ops.shape(inputs), dtype=inputs.dtype, seed=seed)
    logits = (
        ops.log(p + _EPSILON)
        - ops.log(1.0 - p + _EPSILON)
        + ops.log(u + _EPSILON)
        - ops.log(1.0 - u + _EPSILON)
    )
    drop = ops.sigmoid(logits / temperature)
    return ops.multiply(inputs, 1.0 - drop) / (1.0 - p)


def concrete_dropout_regularization(
    kernel: Tensor,
    p: Tensor | float,
    input_dim: int,
    weight_regularizer: float,
    dropout_regularizer: float,
) -> Tensor:
    """The regularization term of concrete dropout (Gal et al. 2017).

    `weight_regularizer * sum(kernel^2) / (1 - p)
    + dropout_regularizer * input_dim * (p log p + (1 - p) log(1 - p))`.

    Args:
        kernel: the wrapped layer's kernel.
        p: scalar tensor in (0, 1), the drop probability.
        input_dim: int, the number of input features (channels).
        weight_regularizer: non-negative float, weight of the kernel term.
        dropout_regularizer: non-negative float, weight of the entropy term.

    Returns:
        A scalar tensor.
    """
    p = ops.cast(p, "float32")
    kernel = ops.cast(kernel, "float32")
    weight_term = weight_regularizer * ops.sum(ops.square(kernel)) / (1.0 - p)
    neg_entropy = p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p)
    return weight_term + dropout_regularizer * input_dim * neg_entropy


def _logit(x: float) -> float:
    return math.log(x) - math.log1p(-x)


@register
class ConcreteDropout(keras.layers.Wrapper):
    """Dropout on the wrapped layer's inputs with a learned drop rate.

    The rate is `p = sigmoid(p_logit)` with `p_logit` a trainable scalar.
    In training the inputs go through `relaxed_dropout` (a relaxed,
    differentiable dropout scaled by `1 / (1 - p)`), so `p` learns through
    the data loss; at inference the output is exactly the wrapped layer's.
    Every call adds `concrete_dropout_regularization` through `add_loss`
    (it shows in `model.losses`), with `input_dim` the channel axis size of
    the input. Following the paper, set `weight_regularizer` to
    `l^2 / N` and `dropout_regularizer` to `2 / N` for N training examples
    and prior length-scale `l`.

    Args:
        layer: a `keras.layers.Dense`, `Conv1D`, `Conv2D` or `Conv3D`
            instance.
        weight_regularizer: non-negative float, weight of the kernel term.
            Defaults to `1e-6`.
        dropout_regularizer: non-negative float, weight of the entropy
            term. Defaults to `1e-5`.
        init_min: float in (0, 1), lowest initial drop rate. Defaults to
            `0.1`.
        init_max: float in [init_min, 1), highest initial drop rate; the
            initial logit is uniform between the two logits. Defaults to
            `0.1`.
        temperature: positive float, the relaxation temperature. Defaults
            to `0.1`.
        seed: optional int seed for the dropout noise and the initial
            logit. Defaults to `None`.
        **kwargs: base layer keyword arguments (e.g. `name`).

    Call arguments:
        inputs: the wrapped layer's input.
        training: Python boolean, whether to drop inputs. Defaults to
            `None` (no dropping).

    Example:

    >>> layer = ConcreteDropout(keras.layers.Dense(10), seed=0)
    >>> y = layer(np.ones((4, 32)), training=True)
    >>> round(float(keras.ops.convert_to_numpy(layer.p)), 4)
    0.1

    References:
        - [Gal, Hron and Kendall, 2017](https://arxiv.org/abs/1705.07832):
          Concrete Dropout.
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        weight_regularizer: float = 1e-6,
        dropout_regularizer: float = 1e-5,
        init_min: float = 0.1,
        init_max: float = 0.1,
        temperature: float = 0.1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        check_kernel_layer(layer, allow_groups=True)
        self.weight_regularizer = check_non_negative(
            "weight_regularizer", weight_regularizer
        )
        self.dropout_regularizer = check_non_negative(
            "dropout_regularizer", dropout_regularizer
        )
        self.init_min = check_float(
            "init_min", init_min, 0.0, 1.0, low_inclusive=False
        )
        self.init_max = check_float(
            "init_max", init_max, 0.0, 1.0, low_inclusive=False
        )
        if self.init_max < self.init_min:
            raise invalid(
                "init_max", init_max, f"a float >= init_min={init_min!r}"
            )
        self.temperature = check_positive("temperature", temperature)
        self.seed = check_seed("seed", seed)
        super().__init__(layer, **kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        channels_first = getattr(self.layer, "data_format", None) == (
            "channels_first"
        )
        input_dim = input_shape[1 if channels_first else -1]
        # Known here: the wrapped layer's build above fails on a None channel.
        assert input_dim is not None
        self.input_dim = int(input_dim)
        self.p_logit = self.add_weight(
            name="p_logit",
            shape=(),
            initializer=keras.initializers.RandomUniform(
                _logit(self.init_min), _logit(self.init_max), seed=self.seed
            ),
            trainable=True,
        )

    @property
    def p(self) -> Tensor:
        """The current drop rate `sigmoid(p_logit)`, a scalar tensor."""
        return ops.sigmoid(self.p_logit)

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        p = self.p
        self.add_loss(
            concrete_dropout_regularization(
                self.layer.kernel,
                p,
                self.input_dim,
                self.weight_regularizer,
                self.dropout_regularizer,
            )
        )
        if training:
            inputs = relaxed_dropout(
                inputs, p, self.temperature, self.seed_generator
            )
        return self.layer(inputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.layer.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = {
            "weight_regularizer": self.weight_regularizer,
            "dropout_regularizer": self.dropout_regularizer,
            "init_min": self.init_min,
            "init_max": self.init_max,
            "temperature": self.temperature,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> Self:
        return wrapper_from_config(cls, config, custom_objects)
