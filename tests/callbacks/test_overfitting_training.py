"""OverfittingDetector on real CIFAR-10 training (TensorFlow backend).

A wide MLP on 300 real images memorizes them within a few epochs; the
same MLP with the medium preset's regularization (L2 1e-4, batch norm,
dropout 0.4, label smoothing 0.05 and the seed's augmentation layers)
does not overfit as early. Runs are seeded and deterministic on CPU.
"""

import warnings

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import OverfittingDetector
from tests.conftest import requires_tensorflow

pytestmark = [pytest.mark.slow, requires_tensorflow]
EPOCHS = 10


def _mlp(regularized):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = inputs
    if regularized:  # the seed's augmentation, applied in training only
        x = keras.layers.RandomFlip("horizontal", seed=1)(x)
        x = keras.layers.RandomRotation(0.1, seed=2)(x)
        x = keras.layers.RandomZoom(0.1, seed=3)(x)
        x = keras.layers.RandomTranslation(0.1, 0.1, seed=4)(x)
        x = keras.layers.RandomContrast(0.1, seed=5)(x)
    x = keras.layers.Flatten()(x)
    for units in (1024, 1024):
        reg = keras.regularizers.L2(1e-4) if regularized else None
        x = keras.layers.Dense(units, kernel_regularizer=reg)(x)
        if regularized:
            # Ten steps an epoch: a faster momentum lets the moving
            # statistics settle, or val_loss measures them, not the fit.
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.Activation("relu")(x)
        if regularized:
            x = keras.layers.Dropout(0.4, seed=7)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    smoothing = 0.05 if regularized else 0.0
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
        metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def data(cifar10_small):
    x, y = cifar10_small
    x = x.astype("float32") / 255.0
    y = keras.utils.to_categorical(y, 10)
    return (x[:300], y[:300]), (x[500:800], y[500:800])


@pytest.fixture(scope="module")
def unregularized_run(data):
    (x, y), val = data
    detector = OverfittingDetector(action="stop", verbose=0)
    history = _mlp(False).fit(x, y, validation_data=val, epochs=EPOCHS,
                              batch_size=32, verbose=0, callbacks=[detector])
    return detector, history.history


def test_unregularized_mlp_overfits_and_stop_ends_training(unregularized_run):
    detector, history = unregularized_run
    onset, fired = detector.onset_epoch, detector.fired_epoch
    assert onset is not None and fired == onset + 1 < EPOCHS - 1
    assert len(history["loss"]) == fired + 1  # "stop" ended it right there
    val = np.array(history["val_loss"])
    assert int(np.argmin(val)) == onset - 1  # the turn of validation loss
    assert val[onset] > val[onset - 1]
    assert history["loss"][fired] < history["loss"][onset - 1]
    assert history["overfitting"] == [0] * fired + [1]
    np.testing.assert_allclose(
        history["overfit_gap"],
        (val - history["loss"]) / np.array(history["loss"]), rtol=1e-6)
    assert [r["epoch"] for r in detector.records] == list(range(fired + 1))


def test_medium_regularization_fires_later_or_not(data, unregularized_run):
    (x, y), val = data
    baseline = unregularized_run[0].onset_epoch
    detector = OverfittingDetector(verbose=0, action=lambda *a: None)
    history = _mlp(True).fit(x, y, validation_data=val, epochs=baseline + 2,
                             batch_size=32, verbose=0, callbacks=[detector])
    assert len(history.history["loss"]) == baseline + 2
    assert detector.onset_epoch is None or detector.onset_epoch > baseline
    assert len(detector.records) == baseline + 2


def test_run_without_validation_completes_with_one_warning(data):
    (x, y), _ = data
    detector = OverfittingDetector()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = _mlp(False).fit(x, y, epochs=3, batch_size=64, verbose=0,
                                  callbacks=[detector])
    ours = [w for w in caught if "OverfittingDetector" in str(w.message)]
    assert len(ours) == 1 and "val_loss" in str(ours[0].message)
    assert len(history.history["loss"]) == 3
    assert "overfitting" not in history.history and detector.records == []


def test_beside_early_stopping_and_csv_logger(data, tmp_path):
    (x, y), val = data
    detector = OverfittingDetector(verbose=0, action=lambda *a: None)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=2, restore_best_weights=True)
    csv = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    _mlp(False).fit(x, y, validation_data=val, epochs=EPOCHS, batch_size=32,
                    verbose=0, callbacks=[detector, stopper, csv])
    # EarlyStopping stops on its own patience; the detector reports the
    # epoch after the best one, where the validation loss turned.
    assert stopper.stopped_epoch == detector.fired_epoch
    assert detector.onset_epoch == stopper.best_epoch + 1
    rows = np.genfromtxt(tmp_path / "log.csv", delimiter=",", names=True)
    assert list(rows["overfitting"]) == [0] * stopper.stopped_epoch + [1]
    assert np.all(np.isfinite(rows["overfit_gap"]))


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


@pytest.mark.filterwarnings(  # Keras's own, when it writes the .h5 backup
    "ignore:__array__ implementation:DeprecationWarning")
def test_state_survives_backup_and_restore(data, unregularized_run, tmp_path):
    (x, y), val = data
    fired = unregularized_run[0].fired_epoch
    state, backup = tmp_path / "detector.json", str(tmp_path / "backup")
    model = _mlp(False)

    def fit(*extra):
        detector = OverfittingDetector(verbose=0, state_path=state)
        callbacks = [detector, keras.callbacks.BackupAndRestore(backup)]
        history = model.fit(x, y, validation_data=val, epochs=fired + 3,
                            batch_size=32, verbose=0,
                            callbacks=callbacks + list(extra))
        return detector, history

    with pytest.warns(UserWarning, match="Overfitting detected"):
        with pytest.raises(RuntimeError, match="interrupted"):
            fit(_Interrupt(fired + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no second warning
        detector, history = fit()
    assert len(history.history["loss"]) == 2  # resumed at fired + 1
    assert [r["epoch"] for r in detector.records] == list(range(fired + 3))
    assert detector.onset_epoch == unregularized_run[0].onset_epoch
    assert detector.fired_epoch == fired
    assert history.history["overfitting"] == [1, 1]
