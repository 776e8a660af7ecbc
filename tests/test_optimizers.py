"""LookaheadOptimizer and MuonSGD: the rules, Keras's own backups,
saving, bad input."""

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import Lookahead
from keras_regkit.optimizers import LookaheadOptimizer
from keras_regkit.optimizers import MuonSGD
from keras_regkit.optimizers import newton_schulz_orthogonalize
from tests.helpers import toy_classifier
from tests.helpers import toy_data

# float32 weights after a few dozen steps of order-1 updates: a few ulps.
RTOL, ATOL = 1e-5, 1e-6


def _weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]


def _lookahead(**kwargs):
    return LookaheadOptimizer(keras.optimizers.SGD(0.1, momentum=0.9),
                              **kwargs)


@pytest.mark.parametrize("sync_period, decay, ramp_power", [
    (3, 0.5, 0.0), (5, 0.95**5, 3.0)])
def test_fit_equals_the_lookahead_callback(sync_period, decay, ramp_power):
    # The callback is checked against the averaging by hand in
    # test_lookahead.py; without batch norm both average the same weights.
    x, y = toy_data(n=96, classes=3)
    steps = 3 * 12  # 3 epochs of 96 / 8
    optimizer = _lookahead(sync_period=sync_period, decay=decay,
                           ramp_power=ramp_power, total_steps=steps)
    ours = toy_classifier(optimizer, classes=3, hidden=8)
    ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    reference = toy_classifier(keras.optimizers.SGD(0.1, momentum=0.9),
                               classes=3, hidden=8)
    reference.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0,
                  callbacks=[Lookahead(sync_period, decay, ramp_power,
                                       total_steps=steps)])
    assert int(optimizer.iterations) == steps
    for got, want in zip(_weights(ours), _weights(reference)):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_syncs_every_k_steps_and_ends_on_the_slow_weights():
    x, y = toy_data(n=40)
    optimizer = _lookahead(sync_period=4, decay=0.5, ramp_power=0.0)
    model = toy_classifier(optimizer)
    start = _weights(model)
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    # 5 steps: one sync at step 4, then one free step, then the final sync
    # puts the model back on the slow weights of step 4.
    slow = [keras.ops.convert_to_numpy(v) for v in optimizer._slow]
    for got, want in zip(_weights(model), slow):
        np.testing.assert_array_equal(got, want)
    assert any(np.abs(s - w).max() > 1e-4 for s, w in zip(slow, start))


def test_learning_rate_is_the_inner_optimizers():
    optimizer = _lookahead()
    optimizer.learning_rate = 0.01  # what ReduceLROnPlateau does
    assert float(optimizer.inner_optimizer.learning_rate) == pytest.approx(
        0.01)
    assert float(optimizer.learning_rate) == pytest.approx(0.01)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("interrupted")


def test_keras_backup_and_restore_resumes_the_averaging(tmp_path):
    # Keras's own BackupAndRestore saves the optimizer's variables, and so
    # the slow weights: a stopped-and-resumed run ends where an
    # uninterrupted one does.
    x, y = toy_data(n=48, classes=3)

    def run(callbacks):
        model = toy_classifier(_lookahead(sync_period=3, decay=0.6,
                                          ramp_power=2.0, total_steps=24),
                               classes=3, hidden=8)
        model.fit(x, y, epochs=4, batch_size=8, shuffle=False, verbose=0,
                  callbacks=callbacks)
        return model

    whole = run([])
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        run([backup, _Interrupt()])
    resumed = run([keras.callbacks.BackupAndRestore(
        str(tmp_path / "backup"))])
    for got, want in zip(_weights(resumed), _weights(whole)):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_saved_model_keeps_the_optimizer_and_its_slow_weights(tmp_path):
    x, y = toy_data(n=40)
    model = toy_classifier(_lookahead(sync_period=2, decay=0.7,
                                      final_sync=False))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    optimizer = loaded.optimizer
    assert isinstance(optimizer, LookaheadOptimizer)
    assert isinstance(optimizer.inner_optimizer, keras.optimizers.SGD)
    assert (optimizer.sync_period, optimizer.decay) == (2, 0.7)
    assert optimizer.final_sync is False
    assert len(optimizer.variables) == len(model.optimizer.variables)
    for got, want in zip(optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got),
                                      keras.ops.convert_to_numpy(want))


@pytest.mark.parametrize("kwargs, name", [
    ({"optimizer": "sgd"}, "optimizer"),
    ({"sync_period": 0}, "sync_period"),
    ({"decay": 1.5}, "decay"),
    ({"ramp_power": -1.0}, "ramp_power"),
    ({"total_steps": 0}, "total_steps"),
    ({"final_sync": "yes"}, "final_sync"),
])
def test_invalid_arguments(kwargs, name):
    kwargs = {"optimizer": keras.optimizers.SGD(), **kwargs}
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        LookaheadOptimizer(**kwargs)


def test_apply_before_build_without_variables_says_what_to_do():
    optimizer = _lookahead()
    grads = [keras.ops.ones((2,))]
    with pytest.raises(TypeError, match=r"needs `trainable_variables`.*"
                       r"optimizer\.build\(trainable_variables\)"):
        optimizer.apply(grads)
    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer.apply(grads, [variable])  # the documented way works
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable),
                               [-0.1, -0.1], rtol=RTOL)


# MuonSGD ---------------------------------------------------------------


def _newton_schulz_reference(g, steps):
    """airbench94_muon's iteration, written out in float64 NumPy."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (np.linalg.norm(g) + 1e-7)
    wide = x.shape[0] <= x.shape[1]
    x = x if wide else x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.T


@pytest.mark.parametrize("shape", [(16, 72), (72, 16)])
def test_newton_schulz_matches_the_reference_and_flattens_the_spectrum(
        shape):
    # Singular values spread over a decade: orthogonalizing must flatten
    # them.
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(shape[0], min(shape))))
    v, _ = np.linalg.qr(rng.normal(size=(shape[1], min(shape))))
    g = u @ np.diag(np.geomspace(1.0, 10.0, min(shape))) @ v.T
    ours = keras.ops.convert_to_numpy(newton_schulz_orthogonalize(
        keras.ops.convert_to_tensor(g.astype("float32")), steps=3))
    # float32 against float64 through 3 iterations of order-1 products.
    np.testing.assert_allclose(ours, _newton_schulz_reference(g, 3),
                               atol=2e-5)
    five = keras.ops.convert_to_numpy(newton_schulz_orthogonalize(
        keras.ops.convert_to_tensor(g.astype("float32")), steps=5))
    singular = np.linalg.svd(five, compute_uv=False)
    # Muon's quintic leaves singular values near 1, not exactly 1.
    assert singular.min() > 0.5 and singular.max() < 1.5


def _conv_model(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6, 6, 3)),
        keras.layers.Conv2D(8, 3, use_bias=False, name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, name="head"),
    ])
    model.compile(optimizer, loss="mse")
    return model


def _step(model, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4, 6, 6, 3)).astype("float32")
    y = rng.normal(size=(4, 3)).astype("float32")
    model.train_on_batch(x, y)


@pytest.mark.parametrize("nesterov", [True, False])
def test_two_steps_follow_airbench_rule_on_filters_and_sgd_elsewhere(
        nesterov):
    lr, ratio, beta = 0.1, 0.5, 0.6
    rng = np.random.default_rng(0)
    kernel0 = rng.normal(size=(3, 3, 4, 8)) * 0.2
    bias0 = rng.normal(size=(8,))
    grads = [(rng.normal(size=kernel0.shape), rng.normal(size=(8,)))
             for _ in range(2)]
    kernel = keras.Variable(kernel0.astype("float32"), name="kernel")
    bias = keras.Variable(bias0.astype("float32"), name="bias")
    ours = MuonSGD(lr, momentum=0.9, nesterov=nesterov, muon_lr_ratio=ratio,
                   muon_momentum=beta)
    sgd_bias = keras.Variable(bias0.astype("float32"), name="bias")
    sgd = keras.optimizers.SGD(lr, momentum=0.9, nesterov=nesterov)
    expected, momentum = kernel0, np.zeros_like(kernel0)
    for g_kernel, g_bias in grads:
        g_kernel_t, g_bias_t = (keras.ops.convert_to_tensor(g, "float32")
                                for g in (g_kernel, g_bias))
        ours.apply([g_kernel_t, g_bias_t], [kernel, bias])
        sgd.apply([g_bias_t], [sgd_bias])
        # airbench94_muon's Muon.step, in float64 NumPy, Keras's layout.
        momentum = beta * momentum + g_kernel
        direction = g_kernel + beta * momentum if nesterov else momentum
        expected = expected * np.sqrt(8) / np.linalg.norm(expected)
        update = _newton_schulz_reference(direction.reshape(-1, 8).T, 3)
        expected = expected - lr * ratio * update.T.reshape(kernel0.shape)
        # float32 against float64: order-1 values through a few products.
        np.testing.assert_allclose(keras.ops.convert_to_numpy(kernel),
                                   expected, atol=3e-5)
        # The bias is not 4-D: exactly Keras's SGD.
        np.testing.assert_allclose(keras.ops.convert_to_numpy(bias),
                                   keras.ops.convert_to_numpy(sgd_bias),
                                   rtol=RTOL, atol=ATOL)


def test_a_model_trains_with_muon_sgd():
    model = _conv_model(MuonSGD(0.05, muon_lr_ratio=1.0))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 6, 6, 3)).astype("float32")
    y = rng.normal(size=(32, 3)).astype("float32")
    losses = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    losses = losses.history["loss"]
    assert losses[-1] < 0.9 * losses[0]
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv").kernel)
    # Each Muon step starts by rescaling the filter to norm sqrt(8), then
    # moves it by lr times a matrix of norm about sqrt(8): within 10%.
    assert np.linalg.norm(kernel) == pytest.approx(np.sqrt(8), rel=0.1)


def test_filters_are_rescaled_and_the_rest_decays():
    optimizer = MuonSGD(0.1, momentum=0.0, weight_decay=0.5)
    model = _conv_model(optimizer)
    head = keras.ops.convert_to_numpy(model.get_layer("head").kernel)
    grads = [keras.ops.zeros(v.shape) for v in model.trainable_variables]
    optimizer.apply(grads, model.trainable_variables)
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv").kernel)
    # A zero gradient orthogonalizes to zero: the filter is only rescaled
    # to norm sqrt(8) (which undoes decay); the head decays by
    # (1 - 0.1 * 0.5).
    assert np.linalg.norm(kernel) == pytest.approx(np.sqrt(8), rel=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.get_layer("head").kernel),
        head * 0.95, rtol=1e-6)


def test_muon_sgd_saves_and_loads_with_the_model(tmp_path):
    model = _conv_model(MuonSGD(0.05, muon_lr_ratio=2.0, muon_momentum=0.5,
                                ns_steps=4))
    _step(model)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    config = loaded.optimizer.get_config()
    assert isinstance(loaded.optimizer, MuonSGD)
    assert (config["muon_lr_ratio"], config["muon_momentum"],
            config["ns_steps"]) == (2.0, 0.5, 4)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    _step(model, 3)
    _step(loaded, 3)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a),
                                   keras.ops.convert_to_numpy(b),
                                   rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kwargs, name", [
    ({"muon_lr_ratio": 0.0}, "muon_lr_ratio"),
    ({"muon_momentum": 1.0}, "muon_momentum"),
    ({"ns_steps": 0}, "ns_steps"),
    ({"nesterov": "yes"}, "nesterov"),
])
def test_muon_sgd_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        MuonSGD(0.1, **kwargs)
