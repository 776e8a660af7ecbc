"""Optimizers: Lookahead as part of an optimizer's state, and MuonSGD.

`LookaheadOptimizer` wraps any Keras optimizer. Its slow weights are
optimizer variables, so everything that saves an optimizer saves them:
`model.save`, `ModelCheckpoint(save_weights_only=False)`, Keras's
`BackupAndRestore` and Orbax. The sync runs inside the compiled training
step on every backend: no host round trip and no callback.

`MuonSGD` is SGD whose convolution filters take Muon steps instead, as
airbench94_muon trains them. Keras's own `keras.optimizers.Muon` (3.15)
cannot do this: it sends every variable that is not 2-D, convolution
kernels included, to its AdamW branch, and the rest to AdamW, not SGD.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._typing import Tensor
from keras_regkit._validation import check_float
from keras_regkit._validation import check_int
from keras_regkit._validation import check_non_negative
from keras_regkit._validation import invalid

if TYPE_CHECKING:
    from typing_extensions import Self


def _check_one_replica() -> None:
    import tensorflow as tf

    if (tf.distribute.has_strategy()
            and tf.distribute.get_strategy().num_replicas_in_sync > 1):
        raise NotImplementedError(
            "LookaheadOptimizer does not run under a tf.distribute strategy "
            "with several replicas yet; use the Lookahead callback "
            "(keras_regkit.callbacks.Lookahead) there.")


@register
class LookaheadOptimizer(keras.optimizers.Optimizer):
    """Lookahead (Zhang et al. 2019) around any Keras optimizer.

    The inner optimizer updates the model's (fast) weights every step.
    Every `sync_period` steps the slow copy moves toward them,
    `slow = decay * slow + (1 - decay) * fast`, and the fast weights are
    reset to it. With `ramp_power > 0` and `total_steps` set, `decay` grows
    as `decay * (step / total_steps) ** ramp_power` (airbench's schedule:
    plain training early, strong averaging late). At the end of `fit` the
    model is left on the slow weights (`finalize_variable_values`), as the
    `Lookahead` callback's `final_sync` does.

    Unlike the `Lookahead` callback, only the weights the optimizer trains
    are averaged (an optimizer never sees batch-norm moving statistics);
    in exchange the slow weights are saved and restored with the optimizer
    by every Keras mechanism, and the sync is part of the compiled step.

    Args:
        optimizer: the inner `keras.optimizers.Optimizer` (an instance).
        sync_period: optimizer steps between syncs (`k`). Defaults to `5`.
        decay: weight of the slow weights in each sync at full strength
            (`1 - alpha` in the Lookahead paper). Defaults to `0.95 ** 5`.
        ramp_power: exponent of the ramp of `decay` along `total_steps`;
            `0` keeps `decay` constant. Defaults to `3.0`.
        total_steps: steps of the whole run, for the ramp. Defaults to
            `None`: no ramp (constant `decay`).
        final_sync: leave the model on the slow weights when `fit` ends.
            Defaults to `True`.
        name: the optimizer's name. Defaults to `"lookahead"`.

    Example:

    >>> inner = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)
    >>> optimizer = LookaheadOptimizer(inner, sync_period=5, decay=0.5)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile(optimizer=optimizer, loss="mse")
    >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    >>> _ = model.fit(x, x[:, :2], epochs=2, verbose=0)
    >>> int(optimizer.iterations)
    2

    References:
        Zhang et al., "Lookahead Optimizer: k steps forward, 1 step back",
        NeurIPS 2019.
    """

    built: bool  # set by the base class; assigned here too (in `apply`)

    def __init__(
        self,
        optimizer: keras.optimizers.Optimizer,
        sync_period: int = 5,
        decay: float = 0.95**5,
        ramp_power: float = 3.0,
        total_steps: int | None = None,
        final_sync: bool = True,
        name: str = "lookahead",
        **kwargs: Any,
    ) -> None:
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise invalid("optimizer", optimizer,
                          "a keras.optimizers.Optimizer instance")
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            raise invalid(
                "optimizer", optimizer,
                "an optimizer that is not a LossScaleOptimizer (wrap the "
                "LookaheadOptimizer in the LossScaleOptimizer instead)")
        sync_period = check_int("sync_period", sync_period, 1)
        decay = check_float("decay", decay, 0.0, 1.0)
        ramp_power = check_non_negative("ramp_power", ramp_power)
        if total_steps is not None:
            total_steps = check_int("total_steps", total_steps, 1)
        if not isinstance(final_sync, bool):
            raise invalid("final_sync", final_sync, "a bool (True or False)")
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.inner_optimizer = optimizer
        self.sync_period = sync_period
        self.decay = decay
        self.ramp_power = ramp_power
        self.total_steps = total_steps
        self.final_sync = final_sync
        self._slow: list[keras.Variable] = []

    def build(self, var_list: Sequence[keras.Variable]) -> None:
        if self.built:
            return
        self.inner_optimizer.build(var_list)
        super().build(var_list)
        self._slow = []
        # Keras may build an optimizer while tracing the training step, so
        # the slow copies start empty and take the weights' values at the
        # first step, before the first update (`_ready` says they have).
        self._ready = self.add_variable(shape=(), dtype="int32",
                                        initializer="zeros",
                                        aggregation="only_first_replica",
                                        name="slow_ready")
        self._slow = [
            self.add_variable_from_reference(variable, "slow")
            for variable in var_list
        ]

    @property
    def variables(self) -> list[keras.Variable]:
        return self._variables + self.inner_optimizer.variables

    @property
    def iterations(self) -> keras.Variable:
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self) -> Tensor:
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    ) -> None:
        self.inner_optimizer.learning_rate = learning_rate

    def current_decay(self, step: Tensor) -> Tensor:
        """The decay a sync at `step` (1-based, a tensor) uses."""
        if self.ramp_power == 0 or self.total_steps is None:
            return ops.convert_to_tensor(self.decay, "float32")
        progress = ops.clip(
            ops.divide(ops.cast(step, "float32"), float(self.total_steps)),
            0.0, 1.0)
        return ops.multiply(self.decay, ops.power(progress, self.ramp_power))

    def _sync(self, variables: Sequence[keras.Variable], decay: Tensor,
              when: Tensor) -> None:
        for slow, fast in zip(self._slow, variables):
            # `.value`: inside a stateless scope (JAX) the traced value.
            slow_value, fast_value = slow.value, fast.value
            mixed = ops.add(
                ops.multiply(slow_value, ops.cast(decay, slow.dtype)),
                ops.multiply(ops.cast(fast_value, slow.dtype),
                             ops.cast(ops.subtract(1.0, decay), slow.dtype)))
            new_slow = ops.where(when, mixed, slow_value)
            slow.assign(new_slow)
            fast.assign(ops.where(when, ops.cast(new_slow, fast.dtype),
                                  fast_value))

    def apply(
        self,
        grads: Sequence[Tensor],
        trainable_variables: Sequence[keras.Variable] | None = None,
    ) -> None:
        if not self.built:
            if trainable_variables is None:  # a TypeError, as it always was
                raise TypeError(
                    "LookaheadOptimizer.apply needs `trainable_variables` "
                    "until the optimizer is built. Call "
                    "`optimizer.build(trainable_variables)` first.")
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        variables = (self._trainable_variables if trainable_variables is None
                     else list(trainable_variables))
        # The step this update is: read before the inner optimizer counts
        # it (under tf.function a read after could be ordered before).
        step = ops.add(ops.convert_to_tensor(self.inner_optimizer.iterations),
                       1)
        first = ops.equal(self._ready, 0)
        for slow, fast in zip(self._slow, variables):
            slow.assign(ops.where(first, ops.cast(fast.value, slow.dtype),
                                  slow.value))
        self._ready.assign(1)
        self.inner_optimizer.apply(grads, trainable_variables)
        when = ops.equal(ops.mod(step, self.sync_period), 0)
        if keras.backend.backend() == "tensorflow":
            _check_one_replica()
        self._sync(variables, self.current_decay(step), when)

    def finalize_variable_values(
        self, var_list: Sequence[keras.Variable],
    ) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)
        if self.final_sync and self._slow and int(
                ops.convert_to_numpy(self._ready)):
            for slow, fast in zip(self._slow, var_list):
                fast.assign(ops.cast(slow, fast.dtype))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key in ("learning_rate", "weight_decay", "clipnorm", "clipvalue",
                    "global_clipnorm", "use_ema", "ema_momentum",
                    "ema_overwrite_frequency", "loss_scale_factor",
                    "gradient_accumulation_steps"):
            config.pop(key, None)
        return {
            **config,
            "optimizer": keras.optimizers.serialize(self.inner_optimizer),
            "sync_period": self.sync_period,
            "decay": self.decay,
            "ramp_power": self.ramp_power,
            "total_steps": self.total_steps,
            "final_sync": self.final_sync,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> Self:
        config = dict(config)
        inner = keras.optimizers.deserialize(
            config.pop("optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)


def newton_schulz_orthogonalize(
    matrix: Tensor,
    steps: int = 3,
    coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
    epsilon: float = 1e-7,
) -> Tensor:
    """Approximately orthogonalizes a 2-D `matrix` (Muon's update).

    Scales `matrix` to unit Frobenius norm (so its largest singular value
    is at most 1), then runs `steps` quintic Newton-Schulz iterations,
    `X <- a X + (b A + c A A) X` with `A = X X^T`, on the wide orientation.
    The coefficients push every singular value toward about 1 (within
    roughly [0.5, 1.5]) rather than converging exactly (Jordan et al.
    2024).

    Args:
        matrix: a 2-D tensor.
        steps: iterations. Defaults to `3` (airbench94_muon's choice).
        coefficients: `(a, b, c)`. Defaults to Muon's.
        epsilon: added to the norm. Defaults to `1e-7`.

    Returns:
        A tensor of `matrix`'s shape.
    """
    a, b, c = coefficients
    rows, cols = matrix.shape
    x = ops.transpose(matrix) if rows > cols else matrix
    x = ops.divide(x, ops.add(ops.sqrt(ops.sum(ops.square(x))), epsilon))
    for _ in range(steps):
        gram = ops.matmul(x, ops.transpose(x))
        poly = ops.add(ops.multiply(b, gram),
                       ops.multiply(c, ops.matmul(gram, gram)))
        x = ops.add(ops.multiply(a, x), ops.matmul(poly, x))
    return ops.transpose(x) if rows > cols else x


@register
class MuonSGD(keras.optimizers.SGD):
    """SGD with Muon steps for the convolution filters (airbench94_muon).

    Every trainable variable with 4 dimensions (a `Conv2D` kernel,
    `(height, width, in, out)`) takes a Muon step:

    1. `m <- muon_momentum * m + g`; the update direction is
       `g + muon_momentum * m` (Nesterov) or `m`;
    2. the filter is rescaled to norm `sqrt(out)` (with batch norm after
       it, only its direction matters; this keeps the step's relative
       size fixed, so it needs no weight decay);
    3. the direction, as an `(out, height * width * in)` matrix, is
       orthogonalized (`newton_schulz_orthogonalize`) and the filter
       moves by `muon_lr_ratio * learning_rate` times it.

    Every other variable (biases, batch-norm parameters, the dense head)
    takes SGD's step with `momentum`, `nesterov` and `weight_decay` (on
    the filters, the rescaling in step 2 undoes any weight decay). Both
    follow the one `learning_rate` schedule, the filters scaled by
    `muon_lr_ratio`.

    Args:
        learning_rate: SGD's rate (a float or a schedule).
            Defaults to `0.01`.
        momentum: SGD's momentum. Defaults to `0.85`.
        nesterov: Nesterov momentum for both parts. Defaults to `True`.
        muon_lr_ratio: the filters' rate over `learning_rate`. Defaults to
            `1.0`.
        muon_momentum: the filters' momentum. Defaults to `0.6`.
        ns_steps: Newton-Schulz iterations. Defaults to `3`.
        **kwargs: the base optimizer's arguments (`weight_decay`, `name`,
            `clipnorm`, ...).

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)),
    ...                           keras.layers.Conv2D(4, 3),
    ...                           keras.layers.GlobalAveragePooling2D(),
    ...                           keras.layers.Dense(2)])
    >>> model.compile(MuonSGD(0.1, muon_lr_ratio=0.5), loss="mse")

    References:
        - Jordan et al., "Muon: An optimizer for hidden layers in neural
          networks", 2024, https://kellerjordan.github.io/posts/muon/
        - Jordan, cifar10-airbench, `airbench94_muon.py`, 2024.
    """

    def __init__(
        self,
        learning_rate: (
            float | keras.optimizers.schedules.LearningRateSchedule) = 0.01,
        momentum: float = 0.85,
        nesterov: bool = True,
        muon_lr_ratio: float = 1.0,
        muon_momentum: float = 0.6,
        ns_steps: int = 3,
        name: str = "muon_sgd",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, momentum=momentum,
                         nesterov=nesterov, name=name, **kwargs)
        if not isinstance(nesterov, bool):
            raise invalid("nesterov", nesterov, "a bool (True or False)")
        self.muon_lr_ratio = check_float("muon_lr_ratio", muon_lr_ratio, 0.0,
                                         None, low_inclusive=False)
        self.muon_momentum = check_float("muon_momentum", muon_momentum,
                                         0.0, 1.0, high_inclusive=False)
        self.ns_steps = check_int("ns_steps", ns_steps, 1)

    @staticmethod
    def takes_muon_steps(variable: keras.Variable) -> bool:
        """Whether `variable` (trainable, 4-D) takes Muon steps."""
        return len(variable.shape) == 4

    def build(self, variables: Sequence[keras.Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        # The filters' own momentum buffers (SGD's hold a learning-rate
        # scaled velocity, and exist only when `momentum` is not 0).
        self.muon_momentums: list[keras.Variable | None] = (
            [None] * len(variables))
        for variable in variables:
            if self.takes_muon_steps(variable):
                self.muon_momentums[self._get_variable_index(variable)] = (
                    self.add_variable_from_reference(variable,
                                                     "muon_momentum"))

    def update_step(self, gradient: Tensor, variable: keras.Variable,
                    learning_rate: Tensor) -> None:
        if not self.takes_muon_steps(variable):
            return super().update_step(gradient, variable, learning_rate)
        momentum = self.muon_momentums[self._get_variable_index(variable)]
        gradient = ops.cast(gradient, variable.dtype)
        beta = self.muon_momentum
        self.assign(momentum, ops.add(ops.multiply(momentum, beta), gradient))
        direction = (ops.add(gradient, ops.multiply(momentum, beta))
                     if self.nesterov else momentum)
        out = variable.shape[-1]
        # A Keras variable's `.value` is, inside a stateless scope (JAX),
        # the traced value; TensorFlow hands over its own variables.
        weight = (variable.value if isinstance(variable, keras.Variable)
                  else ops.convert_to_tensor(variable))
        weight = ops.multiply(weight, math.sqrt(out) / ops.sqrt(
            ops.sum(ops.square(weight))))
        matrix = ops.transpose(ops.reshape(direction, (-1, out)))
        update = ops.reshape(ops.transpose(
            newton_schulz_orthogonalize(matrix, self.ns_steps)),
            variable.shape)
        lr = ops.multiply(ops.cast(learning_rate, variable.dtype),
                          self.muon_lr_ratio)
        self.assign(variable, ops.subtract(
            weight, ops.multiply(lr, ops.cast(update, variable.dtype))))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "muon_lr_ratio": self.muon_lr_ratio,
                "muon_momentum": self.muon_momentum,
                "ns_steps": self.ns_steps}
