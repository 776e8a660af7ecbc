"""LookaheadOptimizer: the rule, Keras's own backups, saving, bad input."""

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import Lookahead
from keras_regkit.optimizers import LookaheadOptimizer
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
