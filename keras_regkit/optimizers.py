"""Optimizer wrappers: Lookahead as part of the optimizer's own state.

`LookaheadOptimizer` wraps any Keras optimizer. Its slow weights are
optimizer variables, so everything that saves an optimizer saves them:
`model.save`, `ModelCheckpoint(save_weights_only=False)`, Keras's
`BackupAndRestore` and Orbax. The sync runs inside the compiled training
step on every backend: no host round trip and no callback.
"""

import keras
from keras import ops

from keras_regkit._registry import register
from keras_regkit._validation import check_float
from keras_regkit._validation import check_int
from keras_regkit._validation import check_non_negative
from keras_regkit._validation import invalid


def _check_one_replica():
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

    def __init__(self, optimizer, sync_period=5, decay=0.95**5,
                 ramp_power=3.0, total_steps=None, final_sync=True,
                 name="lookahead", **kwargs):
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
        self._slow = []

    def build(self, var_list):
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
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    def current_decay(self, step):
        """The decay a sync at `step` (1-based, a tensor) uses."""
        if self.ramp_power == 0 or self.total_steps is None:
            return ops.convert_to_tensor(self.decay, "float32")
        progress = ops.clip(
            ops.divide(ops.cast(step, "float32"), float(self.total_steps)),
            0.0, 1.0)
        return ops.multiply(self.decay, ops.power(progress, self.ramp_power))

    def _sync(self, variables, decay, when):
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

    def apply(self, grads, trainable_variables=None):
        if not self.built:
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

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)
        if self.final_sync and self._slow and int(
                ops.convert_to_numpy(self._ready)):
            for slow, fast in zip(self._slow, var_list):
                fast.assign(ops.cast(slow, fast.dtype))

    def get_config(self):
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
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.optimizers.deserialize(
            config.pop("optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)
