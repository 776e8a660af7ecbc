"""RegularizationScheduler: the new rates and strengths are in effect in the
compiled train step (measured), under jit_compile too."""

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import RegularizationScheduler
from keras_regkit.callbacks.regularization_scheduler import piecewise_value
from keras_regkit.callbacks.regularization_scheduler import strength_attributes
from keras_regkit.layers import DropConnect
from keras_regkit.layers import MCDropout
from keras_regkit.regularizers import L2SP
from keras_regkit.regularizers import ElasticNet
from keras_regkit.regularizers import GroupLasso
from tests.helpers import random_images

# jit_compile=True means XLA on TensorFlow and is JAX's default; on PyTorch
# it would mean torch.compile, which this CPU-only suite does not exercise.
JIT = keras.backend.backend() != "torch"


def zero_fraction(y_true, y_pred):
    """Fraction of exact zeros in the training-mode output: dropped units."""
    return keras.ops.mean(keras.ops.cast(keras.ops.equal(y_pred, 0.0),
                                         "float32"))


def _dropout_model(make_dropout, jit):
    # All-positive activations, so a zero in the output is a dropped unit.
    inputs = keras.Input((16,))
    x = keras.layers.Dense(512, kernel_initializer="ones",
                           bias_initializer="ones")(inputs)
    model = keras.Model(inputs, make_dropout()(x))
    model.compile(keras.optimizers.SGD(0.0), "mse",
                  metrics=[zero_fraction], jit_compile=jit)
    return model


class _Probe(keras.callbacks.Callback):
    """Records, at each epoch end, the scheduled attribute values."""

    def __init__(self, objects, attr):
        super().__init__()
        self.objects, self.attr, self.seen = objects, attr, []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append([getattr(o, self.attr) for o in self.objects])


class _TraceProbe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.functions = []

    def on_epoch_end(self, epoch, logs=None):
        self.functions.append(self.model.train_function)


@pytest.mark.slow
@pytest.mark.parametrize("make_dropout, jit", [
    (lambda: keras.layers.Dropout(0.5, seed=1), False),
    pytest.param(lambda: keras.layers.Dropout(0.5, seed=1), True,
                 marks=pytest.mark.skipif(not JIT, reason="no XLA on torch")),
    (lambda: MCDropout(0.5, seed=1), False),
], ids=["keras_Dropout", "keras_Dropout_jit", "regkit_MCDropout"])
def test_dropped_fraction_follows_the_schedule(make_dropout, jit):
    x = np.tile(random_images(64, (16,)), (4, 1))
    model = _dropout_model(make_dropout, jit)
    scheduler = RegularizationScheduler(
        dropout_schedule=[(0, 0.1), (2, 0.6)], dropout_mode="absolute")
    probe = _TraceProbe()
    history = model.fit(x, np.zeros((256, 512), "float32"), epochs=3,
                        batch_size=128, verbose=0,
                        callbacks=[scheduler, probe])
    measured = history.history["zero_fraction"]
    # 131,072 draws an epoch: the standard error is under 0.0014.
    np.testing.assert_allclose(measured, [0.1, 0.1, 0.6], atol=0.01)
    assert history.history["dropout_rate"] == [0.1, 0.1, 0.6]
    # Retraced only where the rate changed (epochs 0 and 2).
    first, second, third = probe.functions
    assert first is second and second is not third


@pytest.mark.slow
def test_scale_mode_keeps_each_layer_ratio_and_keras_regkit_layers():
    inputs = keras.Input((8,))
    x = keras.layers.Dense(8)(inputs)
    x = keras.layers.Dropout(0.4, name="dense_drop")(x)
    x = keras.layers.Dropout(0.2, name="conv_drop")(x)
    x = DropConnect(keras.layers.Dense(4), rate=0.3, name="dc")(x)
    model = keras.Model(inputs, keras.layers.GaussianDropout(0.5)(x))
    model.compile("sgd", "mse")
    layers = [model.get_layer(n) for n in ("dense_drop", "conv_drop", "dc")]
    probe = _Probe(layers, "rate")
    scheduler = RegularizationScheduler(
        dropout_schedule=lambda epoch: min(1.0, epoch / 2))
    model.fit(np.ones((8, 8)), np.ones((8, 4)), epochs=4, verbose=0,
              callbacks=[scheduler, probe])
    expected = [[0.4 * s, 0.2 * s, 0.3 * s] for s in (0.0, 0.5, 1.0, 1.0)]
    np.testing.assert_allclose(probe.seen, expected)
    assert model.layers[-1].rate == 0.5  # GaussianDropout scaled too


@pytest.mark.slow
def test_reference_recipe_l2_tracks_the_learning_rate():
    # LR x0.1 every 2 epochs (30 in the reference recipe); L2 x
    # initial_lr / current_lr.
    # With a near-zero LR the weights stay put, so the change of the loss
    # is exactly the change of the penalty: the new strength is in effect.
    initial_lr, l2 = 1e-12, 1e-3
    inputs = keras.Input((4,))
    layer = keras.layers.Dense(3, kernel_initializer="ones",
                               kernel_regularizer=keras.regularizers.L2(l2))
    model = keras.Model(inputs, layer(inputs))
    model.compile(keras.optimizers.SGD(initial_lr), "mse")

    def lr(epoch):
        return initial_lr * 0.1 ** (epoch // 2)

    def current_lr(epoch):
        return float(keras.ops.convert_to_numpy(
            model.optimizer.learning_rate))

    scheduler = RegularizationScheduler(
        regularizer_schedule=lambda epoch: initial_lr / current_lr(epoch))
    probe = _Probe([layer.kernel_regularizer], "l2")
    history = model.fit(
        np.zeros((8, 4)), np.zeros((8, 3)), epochs=5, batch_size=8,
        verbose=0, validation_data=(np.zeros((8, 4)), np.zeros((8, 3))),
        callbacks=[keras.callbacks.LearningRateScheduler(lr), scheduler,
                   probe])
    scales = np.array([1, 1, 10, 10, 100], "float64")
    np.testing.assert_allclose(np.ravel(probe.seen), l2 * scales, rtol=1e-5)
    penalty = l2 * scales * 12.0  # sum of the squared all-ones kernel
    np.testing.assert_allclose(history.history["loss"], penalty, rtol=1e-4)
    np.testing.assert_allclose(history.history["val_loss"], penalty,
                               rtol=1e-4)
    np.testing.assert_allclose(history.history["regularizer_scale"], scales,
                               rtol=1e-5)


def test_keras_regkit_regularizers_and_absolute_mode():
    # Zero data, zero learning rate: the training loss is the penalty alone.
    anchor = np.zeros((4, 3), "float32")
    regs = [ElasticNet(1e-3, 2e-3), L2SP(1e-3, anchor), GroupLasso(1e-3)]
    inputs = keras.Input((4,))
    dense = [keras.layers.Dense(3, kernel_regularizer=r) for r in regs]
    model = keras.Model(
        inputs, keras.layers.Concatenate()([d(inputs) for d in dense]))
    model.compile(keras.optimizers.SGD(0.0), "mse", jit_compile=JIT)
    assert strength_attributes(regs[0]) == ["l1", "l2"]
    assert strength_attributes(regs[1]) == ["alpha"]
    assert strength_attributes(regs[2]) == ["l"]
    scheduler = RegularizationScheduler(
        regularizer_schedule=[(0, 0.0), (1, 5e-3)],
        regularizer_mode="absolute")
    history = model.fit(np.zeros((4, 4)), np.zeros((4, 9)), epochs=2,
                        verbose=0, callbacks=[scheduler])
    assert (regs[0].l1, regs[0].l2, regs[1].alpha, regs[2].l) == (5e-3,) * 4
    w = [keras.ops.convert_to_numpy(d.kernel).astype("float64")
         for d in dense]
    expected = 5e-3 * (np.abs(w[0]).sum() + np.square(w[0]).sum()
                       + np.square(w[1]).sum()
                       + np.sqrt(4) * np.linalg.norm(w[2], axis=0).sum())
    np.testing.assert_allclose(history.history["loss"], [0.0, expected],
                               rtol=1e-5, atol=1e-9)
    assert history.history["regularizer_strength"] == [0.0, 5e-3]


def test_layers_filter_and_rate_zero_warning():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4)(inputs)
    x = keras.layers.Dropout(0.5, name="a")(x)
    x = keras.layers.Dropout(0.0, name="b")(x)
    model = keras.Model(inputs, keras.layers.Dropout(0.5, name="c")(x))
    model.compile("sgd", "mse")
    scheduler = RegularizationScheduler(
        dropout_schedule=[(0, 0.3)], dropout_mode="absolute",
        layers=["a", "b"])
    with pytest.warns(UserWarning, match="`b`: it was built with rate=0"):
        model.fit(np.ones((4, 4)), np.ones((4, 4)), verbose=0,
                  callbacks=[scheduler])
    rates = [model.get_layer(n).rate for n in "abc"]
    assert rates == [0.3, 0.0, 0.5]


def test_bad_schedule_output_raises_clearly():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5)(inputs))
    model.compile("sgd", "mse")
    too_high = RegularizationScheduler(dropout_schedule=lambda e: 3.0)
    with pytest.raises(ValueError, match=r"rate=1\.5 at epoch 0"):
        model.fit(np.ones((4, 4)), np.ones((4, 4)), verbose=0,
                  callbacks=[too_high])
    not_float = RegularizationScheduler(dropout_schedule=lambda e: "x")
    with pytest.raises(ValueError, match="must return a finite"):
        model.fit(np.ones((4, 4)), np.ones((4, 4)), verbose=0,
                  callbacks=[not_float])


def test_piecewise_value_and_config_round_trip():
    pieces = [(0, 1.0), (3, 0.5), (7, 0.1)]
    assert [piecewise_value(pieces, e) for e in (0, 2, 3, 6, 7, 50)] == [
        1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    scheduler = RegularizationScheduler(dropout_schedule=pieces, verbose=1)
    config = scheduler.get_config()
    assert RegularizationScheduler.from_config(config).get_config() == config


@pytest.mark.parametrize("kwargs, name", [
    ({}, "dropout_schedule"),
    ({"dropout_schedule": [(1, 0.5)]}, "dropout_schedule"),
    ({"dropout_schedule": [(0, 0.5), (0, 0.2)]}, "dropout_schedule"),
    ({"dropout_schedule": [(0, -0.5)]}, "dropout_schedule"),
    ({"dropout_schedule": 0.5}, "dropout_schedule"),
    ({"regularizer_schedule": [(0.5, 1.0)]}, "regularizer_schedule"),
    ({"dropout_schedule": [(0, 1.0)], "dropout_mode": "absolute"},
     "dropout_schedule"),
    ({"dropout_schedule": [(0, 1.0)], "dropout_mode": "add"},
     "dropout_mode"),
    ({"regularizer_schedule": [(0, 1.0)], "regularizer_mode": "x"},
     "regularizer_mode"),
    ({"dropout_schedule": [(0, 1.0)], "layers": "dense"}, "layers"),
    ({"dropout_schedule": [(0, 1.0)], "verbose": 2}, "verbose"),
])
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        RegularizationScheduler(**kwargs)
