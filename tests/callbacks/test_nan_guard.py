"""NaNGuard: training stops at the first non-finite loss, unsaved."""

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import HistoryRecorder, NaNGuard
from keras_regkit.callbacks.history_recorder import read_history_csv

from tests.helpers import toy_classifier, toy_data

BATCH = 16


def _data(n=64):
    return toy_data(n)


def _model():
    return toy_classifier(keras.optimizers.SGD(0.01))


class _Epochs(keras.callbacks.Callback):
    """Counts the batches and epochs that reach the callbacks after it."""

    def __init__(self):
        super().__init__()
        self.batches, self.epochs = 0, []

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


class _PoisonAt(keras.callbacks.Callback):
    """Sets every weight to NaN at the end of one batch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            for w in self.model.trainable_weights:
                w.assign(keras.ops.full(w.shape, float("nan"), w.dtype))


def test_a_nan_loss_stops_at_that_batch_naming_epoch_and_batch(tmp_path):
    x, y = _data()
    after = _Epochs()
    history_path = tmp_path / "history.csv"
    with pytest.raises(FloatingPointError) as info:
        _model().fit(x, y, batch_size=BATCH, epochs=3, shuffle=False,
                     verbose=0, callbacks=[_PoisonAt(epoch=1, batch=1),
                                           NaNGuard(), after,
                                           HistoryRecorder(history_path)])
    message = str(info.value)
    assert "`loss` became nan at epoch 2, batch 3 (1-based)" in message
    assert "learning rate" in message and "clipnorm" in message
    # The bad batch and its epoch never reached the callbacks after it.
    assert after.epochs == [0]
    assert after.batches == 4 + 2
    assert [r["epoch"] for r in read_history_csv(history_path)] == [0]


def test_a_nan_validation_loss_stops_before_the_epoch_is_recorded():
    x, y = _data()
    x_val = x[:BATCH].copy()
    x_val[3] = np.nan
    after = _Epochs()
    with pytest.raises(FloatingPointError,
                       match=r"`val_loss` became nan at epoch 1 \(1-based\)"):
        _model().fit(x, y, validation_data=(x_val, y[:BATCH]),
                     batch_size=BATCH, epochs=2, verbose=0,
                     callbacks=[NaNGuard(), after])
    assert after.batches == 4 and after.epochs == []


def test_finite_training_is_left_alone():
    x, y = _data()
    after = _Epochs()
    history = _model().fit(x, y, validation_data=(x[:BATCH], y[:BATCH]),
                           batch_size=BATCH, epochs=2, verbose=0,
                           callbacks=[NaNGuard(), after])
    assert history.epoch == [0, 1] and after.epochs == [0, 1]


def test_it_is_a_terminate_on_nan_that_raises():
    guard = NaNGuard()
    assert isinstance(guard, keras.callbacks.TerminateOnNaN)
    assert guard.raise_error
    guard.on_epoch_begin(4)
    with pytest.raises(FloatingPointError, match="`loss` became inf at "
                       "epoch 5, batch 1"):
        guard.on_train_batch_end(0, {"loss": float("inf")})
    guard.on_train_batch_end(1, {"loss": 0.5, "other": float("nan")})
