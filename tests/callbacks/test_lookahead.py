"""Lookahead: the callback equals the same averaging done by hand."""

import keras
import numpy as np
import pytest

from keras_regkit.callbacks.lookahead import Lookahead
from keras_regkit.callbacks.lookahead import lookahead_decay
from keras_regkit.callbacks.lookahead import lookahead_sync

BATCH, STEPS = 8, 12
_np = keras.ops.convert_to_numpy


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * STEPS, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    return x, y


def _model(batch_norm=True):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(6, name="hidden")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=0.5, name="bn")(x)
    outputs = keras.layers.Dense(1, name="out")(keras.layers.Activation(
        "tanh")(x))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def _tracked(model):
    return list(model.trainable_variables) + [
        v for v in model.non_trainable_variables
        if v.path.endswith(("moving_mean", "moving_variance"))]


def _by_hand(model, x, y, period, decay, power, epochs):
    total = STEPS * epochs
    fast = _tracked(model)
    slow = [_np(v) for v in fast]
    step = 0
    for _ in range(epochs):
        for i in range(STEPS):
            model.train_on_batch(x[i * BATCH:(i + 1) * BATCH],
                                 y[i * BATCH:(i + 1) * BATCH])
            step += 1
            if step % period == 0:
                d = decay * (step / total) ** power
                for j, v in enumerate(fast):
                    slow[j] = d * slow[j] + (1 - d) * _np(v)
                    v.assign(slow[j])
    for s, v in zip(slow, fast):  # final sync: the slow weights
        v.assign(s)
    return [_np(v) for v in fast]


@pytest.mark.parametrize("period, decay, power", [(3, 0.5, 0.0),
                                                  (5, 0.95**5, 3.0),
                                                  (1, 0.9, 1.0)])
def test_fit_with_lookahead_equals_the_averaging_by_hand(period, decay,
                                                         power):
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
              callbacks=[Lookahead(period, decay, power)])
    expected = _by_hand(_model(), x, y, period, decay, power, epochs=2)
    for got, want in zip(_tracked(model), expected):
        np.testing.assert_allclose(_np(got), want, rtol=1e-5,
                                   atol=1e-6)


def test_lookahead_changes_the_result_of_plain_sgd():
    x, y = _data()
    plain, averaged = _model(), _model()
    plain.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    averaged.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
                 callbacks=[Lookahead(2, 0.5, 0.0)])
    gap = np.abs(plain.get_weights()[0] - averaged.get_weights()[0]).max()
    assert gap > 1e-3


def test_batch_norm_statistics_can_be_left_alone():
    x, y = _data()
    model, reference = _model(), _model()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
              callbacks=[Lookahead(1, 0.9, 0.0, average_batch_norm=False)])
    reference.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False,
                  verbose=0, callbacks=[Lookahead(1, 0.9, 0.0)])
    moving = [i for i, v in enumerate(model.weights)
              if v.path.endswith("moving_mean")]
    assert moving
    a = _np(model.weights[moving[0]])
    b = _np(reference.weights[moving[0]])
    assert np.abs(a - b).max() > 1e-4


def test_without_final_sync_the_run_ends_on_the_fast_weights():
    x, y = _data()
    period = STEPS  # one sync at the end of the epoch: fast == slow there
    synced, unsynced = _model(False), _model(False)
    for model, final in ((synced, True), (unsynced, False)):
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False,
                  verbose=0, callbacks=[Lookahead(period, 0.5, 0.0,
                                                  final_sync=final)])
    for a, b in zip(synced.get_weights(), unsynced.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_decay_ramp_values():
    assert lookahead_decay(0, 100, 0.8, 3.0) == 0.0
    assert lookahead_decay(50, 100, 0.8, 3.0) == pytest.approx(0.1)
    assert lookahead_decay(100, 100, 0.8, 3.0) == pytest.approx(0.8)
    assert lookahead_decay(150, 100, 0.8, 3.0) == pytest.approx(0.8)
    assert lookahead_decay(7, 100, 0.8, 0.0) == pytest.approx(0.8)


def test_sync_moves_slow_toward_fast_and_resets_fast():
    slow, fast = keras.Variable([1.0, -2.0]), keras.Variable([3.0, 2.0])
    lookahead_sync([slow], [fast], 0.25)
    np.testing.assert_allclose(_np(slow), [2.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(_np(fast), [2.5, 1.0], rtol=1e-6)


def test_total_steps_from_fit_parameters():
    x, y = _data()
    callback = Lookahead(4)
    _model(False).fit(x, y, batch_size=BATCH, epochs=3, verbose=0,
                      callbacks=[callback])
    assert callback.step == 3 * STEPS and callback._total == 3 * STEPS


def test_config_round_trip():
    callback = Lookahead(7, 0.5, 2.0, total_steps=100,
                         average_batch_norm=False, final_sync=False)
    again = Lookahead(**callback.get_config())
    assert again.get_config() == callback.get_config()


@pytest.mark.parametrize("kwargs, name", [
    ({"sync_period": 0}, "sync_period"),
    ({"decay": 1.0}, "decay"),
    ({"decay": -0.1}, "decay"),
    ({"ramp_power": -1.0}, "ramp_power"),
    ({"total_steps": 0}, "total_steps"),
    ({"average_batch_norm": "yes"}, "average_batch_norm"),
    ({"final_sync": 1}, "final_sync"),
])
def test_invalid_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        Lookahead(**kwargs)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated kill")


def _fit(model, callbacks, epochs=4):
    model.fit(*_data(), batch_size=BATCH, epochs=epochs, shuffle=False,
              verbose=0, callbacks=callbacks)


@pytest.mark.parametrize("backup_first", [False, True])
def test_a_resumed_run_goes_on_with_the_same_averaging(tmp_path,
                                                       backup_first):
    from keras_regkit.callbacks import RunBackup

    # Period 5 with 12 steps an epoch: at the kill (after epoch 2, step 24)
    # the slow weights (last synced at step 20) differ from the model's, and
    # the ramp depends on the step, so both must come back from the backup.
    args = (5, 0.9, 1.0)
    whole = _model()
    _fit(whole, [Lookahead(*args)])

    def callbacks(lookahead, *extra):
        backup = RunBackup(tmp_path / "backup", [lookahead])
        pair = [backup, lookahead] if backup_first else [lookahead, backup]
        return pair + list(extra)

    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), callbacks(Lookahead(*args), _Interrupt(epoch=1)))
    resumed_lookahead = Lookahead(*args)
    resumed = _model()
    _fit(resumed, callbacks(resumed_lookahead))
    assert resumed_lookahead.step == 4 * STEPS  # counted on from step 24
    for got, want in zip(_tracked(resumed), _tracked(whole), strict=True):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5,
                                   atol=1e-6)

    # Restarting the averaging from the restored model (what a backup
    # without the slow weights gives) ends elsewhere.
    restarted = _model()
    with pytest.raises(KeyboardInterrupt):
        _fit(restarted, [RunBackup(tmp_path / "plain"), Lookahead(*args),
                         _Interrupt(epoch=1)])
    restarted = _model()
    _fit(restarted, [Lookahead(*args), RunBackup(tmp_path / "plain")])
    gap = max(np.abs(_np(a) - _np(b)).max()
              for a, b in zip(_tracked(restarted), _tracked(whole)))
    assert gap > 1e-4


def test_restoring_slow_weights_of_another_model_names_the_mismatch():
    model = _model(batch_norm=False)
    lookahead = Lookahead()
    lookahead.set_model(model)
    lookahead.on_train_begin()
    with pytest.raises(ValueError, match="holds 1 slow weights but the "
                                         "model tracks 4"):
        lookahead.restore_backup_state({"step": 3}, [np.zeros((4, 6))])
    with pytest.raises(ValueError, match=r"shape \(5, 6\) in the backup, "
                                         r"\(4, 6\) in the model"):
        lookahead.restore_backup_state(
            {"step": 3}, [np.zeros((5, 6))] + [_np(v) for v in
                                               model.trainable_variables[1:]])
    lookahead.restore_backup_state({"step": 7}, None)
    assert lookahead.step == 7
