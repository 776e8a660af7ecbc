"""OverfittingDetector: the rule, the state and the arguments on scripted
epoch logs, then real CIFAR-10 training runs.

In the training runs a wide MLP on 300 real images memorizes them within a
few epochs; the same MLP with the medium preset's regularization (L2 1e-4,
batch norm, dropout 0.4, label smoothing 0.05, and the flip and contrast of
the reference recipe's augmentation) does not overfit as early. Rotation,
zoom and translation are left out: their image resampling cost more than
the rest of the run (50 s of a 55 s run on JAX). Runs are seeded and
deterministic on CPU.
"""

import json
import math
import warnings

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import OverfittingDetector
from keras_regkit.callbacks.overfitting_detector import epoch_signals
from keras_regkit.callbacks.overfitting_detector import find_accuracy_key
from keras_regkit.callbacks.overfitting_detector import overfitting_onset

# Training loss keeps falling; validation falls to epoch 3, then rises.
LOSS = [2.0, 1.6, 1.3, 1.1, 0.9, 0.7, 0.5]
VAL = [2.1, 1.8, 1.6, 1.5, 1.6, 1.7, 1.8]


class _Stub:
    stop_training = False


def _feed(detector, losses, vals, accs=None, val_accs=None, first=0,
          acc_key="accuracy"):
    detector.set_model(_Stub())
    detector.on_train_begin()
    all_logs = []
    for i, (loss, val) in enumerate(zip(losses, vals)):
        epoch = first + i
        detector.on_epoch_begin(epoch)
        logs = {"loss": loss, "val_loss": val}
        if accs is not None:
            logs[acc_key], logs["val_" + acc_key] = accs[i], val_accs[i]
        detector.on_epoch_end(epoch, logs)
        all_logs.append(logs)
    return all_logs


def test_fires_after_patience_with_onset_where_validation_turned():
    detector = OverfittingDetector(verbose=0)
    with pytest.warns(UserWarning, match=r"epoch 5 \(onset epoch 4") as rec:
        logs = _feed(detector, LOSS, VAL)
    assert len([w for w in rec if "Overfitting" in str(w.message)]) == 1
    assert detector.onset_epoch == 4 and detector.fired_epoch == 5
    assert [entry["overfitting"] for entry in logs] == [0, 0, 0, 0, 0, 1, 1]
    np.testing.assert_allclose(logs[4]["overfit_gap"], (1.6 - 0.9) / 0.9)
    assert [r["epoch"] for r in detector.records] == list(range(7))
    assert [r["signal"] for r in detector.records] == [
        False, False, False, False, True, True, True]


def test_gap_alone_while_validation_improves_does_not_fire():
    # The reference recipe's check would warn every epoch: val_loss >
    # 1.1 * loss throughout.
    losses = [1.0, 0.8, 0.6, 0.5, 0.4]
    vals = [1.5, 1.4, 1.3, 1.25, 1.2]
    detector = OverfittingDetector(threshold=0.1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _feed(detector, losses, vals)
    assert detector.onset_epoch is None
    assert all(r["loss_gap"] > 0.1 for r in detector.records)


def test_isolated_noise_does_not_fire_and_patience_counts():
    # Validation alternates up and down; every stalled epoch has a gap.
    losses = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    vals = [1.5, 1.6, 1.4, 1.45, 1.3, 1.35, 1.2, 1.25]
    quiet = OverfittingDetector(verbose=0, action=lambda *a: None)
    _feed(quiet, losses, vals)
    assert quiet.onset_epoch is None
    assert sum(r["signal"] for r in quiet.records) == 4
    eager = OverfittingDetector(patience=1, verbose=0, action=lambda *a: None)
    _feed(eager, losses, vals)
    assert eager.onset_epoch == 1


def test_min_delta_ignores_small_rises():
    losses = [1.0, 0.99, 0.98, 0.97]
    vals = [1.05, 1.052, 1.054, 1.056]  # tiny rises, gap under threshold
    strict = OverfittingDetector(min_delta=0.01, verbose=0)
    _feed(strict, losses, vals)
    assert strict.onset_epoch is None
    loose = OverfittingDetector(min_delta=0.0, verbose=0,
                                action=lambda *a: None)
    _feed(loose, losses, vals)
    assert loose.onset_epoch == 1 and loose.records[1]["rising"]


@pytest.mark.parametrize("key", ["accuracy", "acc",
                                 "sparse_categorical_accuracy", "top1"])
def test_accuracy_gap_under_any_metric_name(key):
    # Validation stalls, training loss flat: only the accuracy gap signals.
    losses, vals = [1.0, 0.9, 0.9, 0.9], [1.0, 0.95, 0.96, 0.97]
    accs, val_accs = [0.5, 0.7, 0.8, 0.9], [0.5, 0.55, 0.55, 0.56]
    for acc_threshold, onset in ((0.2, 2), (None, None)):
        detector = OverfittingDetector(
            threshold=1.0, acc_threshold=acc_threshold, verbose=0,
            action=lambda *a: None,
            acc_metric="top1" if key == "top1" else None)
        _feed(detector, losses, vals, accs, val_accs, acc_key=key)
        assert detector.records[2]["acc_gap"] == pytest.approx(0.25)
        assert detector.onset_epoch == onset


def test_find_accuracy_key_skips_top_k_and_unpaired():
    logs = {"loss": 1, "top_5_accuracy": 1, "val_top_5_accuracy": 1,
            "my_acc": 1, "val_my_acc": 1, "accuracy": 1}
    assert find_accuracy_key(logs) == "my_acc"
    assert find_accuracy_key({"accuracy": 1}) is None
    assert find_accuracy_key(logs, "top_5_accuracy") == "top_5_accuracy"


def test_stop_and_callable_actions_run_once():
    stopper = OverfittingDetector(action="stop", verbose=0)
    _feed(stopper, LOSS[:6], VAL[:6])
    assert stopper.model.stop_training
    calls = []
    hook = OverfittingDetector(
        verbose=0, action=lambda det, epoch, logs: calls.append(
            (det.onset_epoch, epoch, logs["overfitting"])))
    _feed(hook, LOSS, VAL)
    assert calls == [(4, 5, 1)]


def test_start_epoch_ignores_early_epochs():
    detector = OverfittingDetector(start_epoch=6, verbose=0)
    _feed(detector, LOSS, VAL)
    assert detector.onset_epoch is None
    assert len(detector.records) == 7


def test_missing_validation_warns_once_and_adds_nothing():
    detector = OverfittingDetector()
    detector.set_model(_Stub())
    detector.on_train_begin()
    with pytest.warns(UserWarning, match=r"available: \['accuracy', 'loss'\]"):
        for epoch in range(3):
            logs = {"loss": 1.0 / (epoch + 1), "accuracy": 0.5}
            detector.on_epoch_begin(epoch)
            detector.on_epoch_end(epoch, logs)
            assert set(logs) == {"loss", "accuracy"}
    assert detector.records == [] and detector.onset_epoch is None
    assert "no epoch" in detector.summary()


def test_bad_values_in_logs_never_raise():
    detector = OverfittingDetector(verbose=0)
    with pytest.warns(UserWarning, match="needs numeric"):
        _feed(detector, [1.0, float("nan"), 0.0, 0.5],
              [1.0, 2.0, float("nan"), np.array([1.0, 2.0])])
    assert len(detector.records) == 3
    assert math.isnan(detector.records[1]["loss_gap"])


def test_resumed_run_replaces_reruns_and_keeps_state(tmp_path):
    path = tmp_path / "sub" / "state.json"
    first = OverfittingDetector(verbose=0, state_path=path)
    with pytest.warns(UserWarning, match="Overfitting"):
        _feed(first, LOSS[:6], VAL[:6])
    saved = json.loads(path.read_text())
    assert [r["epoch"] for r in saved["records"]] == list(range(6))
    # A new process resumes at epoch 6: no second action.
    second = OverfittingDetector(verbose=0, state_path=path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _feed(second, LOSS[6:], VAL[6:], first=6)
    assert [r["epoch"] for r in second.records] == list(range(7))
    assert second.onset_epoch == 4 and second.fired_epoch == 5
    # Resuming at epoch 5 again (its backup lost) re-runs it once.
    rerun = OverfittingDetector(verbose=0, state_path=path)
    with pytest.warns(UserWarning, match="at epoch 5"):
        _feed(rerun, LOSS[5:], VAL[5:], first=5)
    assert [r["epoch"] for r in rerun.records] == list(range(7))
    assert rerun.onset_epoch == 4
    # A fresh fit from epoch 0 starts over.
    third = OverfittingDetector(verbose=0, state_path=path)
    _feed(third, LOSS[:2], VAL[:2])
    assert [r["epoch"] for r in third.records] == [0, 1]
    assert third.onset_epoch is None


def test_corrupt_state_file_warns_and_starts_empty(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    detector = OverfittingDetector(verbose=0, state_path=path)
    with pytest.warns(UserWarning, match="could not read its state"):
        detector.on_train_begin()
    assert detector.records == []


def test_pure_functions():
    record = {"epoch": 1, "loss": 1.0, "val_loss": 1.5, "accuracy": None,
              "val_accuracy": None}
    history = [{"epoch": 0, "loss": 1.2, "val_loss": 1.4}]
    out = epoch_signals(record, history, 0.1, None, 0.0)
    assert out == {"loss_gap": 0.5, "acc_gap": None, "improved": False,
                   "rising": True, "signal": True}
    runs = [{"epoch": e, "signal": s} for e, s in
            enumerate([True, False, True, True, True])]
    assert overfitting_onset(runs, 3) == (2, 4)
    assert overfitting_onset(runs[:4], 3) == (None, None)


def test_summary_and_config_round_trip():
    detector = OverfittingDetector(threshold=0.15, verbose=0,
                                   action=lambda *a: None)
    _feed(detector, LOSS, VAL)
    report = detector.summary()
    assert "onset epoch 4" in report and report.count("\n") == 9
    config = detector.get_config()
    assert OverfittingDetector.from_config(config).get_config() == config
    assert keras.saving.get_registered_object(
        "keras_regkit>OverfittingDetector") is OverfittingDetector


def test_seed_call_unchanged():
    detector = OverfittingDetector(threshold=0.15)
    assert detector.threshold == 0.15 and detector.action == "warn"
    assert isinstance(detector, keras.callbacks.Callback)


@pytest.mark.parametrize("kwargs, name", [
    ({"threshold": -0.1}, "threshold"),
    ({"patience": 0}, "patience"),
    ({"min_delta": -1.0}, "min_delta"),
    ({"monitor": ""}, "monitor"),
    ({"acc_threshold": 1.5}, "acc_threshold"),
    ({"action": "explode"}, "action"),
    ({"start_epoch": -1}, "start_epoch"),
    ({"verbose": 3}, "verbose"),
    ({"acc_metric": 5}, "acc_metric"),
    ({"state_path": 3.0}, "state_path"),
])
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        OverfittingDetector(**kwargs)


# Real training runs (plain model.fit, every backend).

EPOCHS = 10


def _mlp(regularized):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = inputs
    if regularized:  # augmentation, applied in training only
        x = keras.layers.RandomFlip("horizontal", seed=1)(x)
        x = keras.layers.RandomContrast(0.1, seed=5)(x)
    x = keras.layers.Flatten()(x)
    for units in (512, 512):
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_medium_regularization_fires_later_or_not(data, unregularized_run):
    (x, y), val = data
    baseline = unregularized_run[0].onset_epoch
    detector = OverfittingDetector(verbose=0, action=lambda *a: None)
    history = _mlp(True).fit(x, y, validation_data=val, epochs=baseline + 2,
                             batch_size=32, verbose=0, callbacks=[detector])
    assert len(history.history["loss"]) == baseline + 2
    assert detector.onset_epoch is None or detector.onset_epoch > baseline
    assert len(detector.records) == baseline + 2


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
