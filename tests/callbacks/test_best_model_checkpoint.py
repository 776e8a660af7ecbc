"""BestModelCheckpoint: the best model, saved atomically, never replaced by a
worse one, also across a resumed fit."""

import json

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import BestModelCheckpoint
from keras_regkit.callbacks.best_model_checkpoint import read_checkpoint_state

from tests.helpers import toy_classifier, toy_data


def _data(n=64):
    return toy_data(n)


def _model():
    return toy_classifier(keras.optimizers.SGD(0.1))


class _Scores(keras.callbacks.Callback):
    """Puts scripted `score` values in the logs and snapshots the weights."""

    def __init__(self, scores, losses=None):
        super().__init__()
        self.scores, self.losses, self.weights = scores, losses, {}

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.scores[epoch]
        if self.losses is not None:
            logs["loss"] = self.losses[epoch]
        self.weights[epoch] = [np.array(w) for w in self.model.get_weights()]


def _fit(model, callbacks, epochs, initial_epoch=0):
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=epochs, initial_epoch=initial_epoch,
              shuffle=False, verbose=0, callbacks=callbacks)


def _weights(path):
    return keras.saving.load_model(path, compile=False).get_weights()


def _assert_same(got, want):
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_only_improvements_are_saved_with_their_score(tmp_path):
    path = tmp_path / "best_model.keras"
    scores = _Scores([0.5, 0.7, 0.6, 0.8, 0.65])
    checkpoint = BestModelCheckpoint(path, monitor="score")
    _fit(_model(), [scores, checkpoint], epochs=5)
    assert (checkpoint.best, checkpoint.best_epoch) == (0.8, 3)
    assert read_checkpoint_state(path) == {"monitor": "score", "best": 0.8,
                                           "epoch": 3}
    assert json.loads(checkpoint.state_path.read_text())["epoch"] == 3
    _assert_same(_weights(path), scores.weights[3])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best_model.best.json", "best_model.keras"]


def test_a_resumed_fit_never_replaces_a_better_model(tmp_path):
    path = tmp_path / "best_model.keras"
    _fit(_model(), [_Scores([0.5, 0.9]),
                    BestModelCheckpoint(path, monitor="score")], epochs=2)
    saved = path.read_bytes()
    # A new process, a new callback: the best comes back from the archive.
    resumed = BestModelCheckpoint(path, monitor="score")
    scores = _Scores([None, None, 0.7, 0.85, 0.95])
    model = _model()
    model.set_weights([w + 1.0 for w in model.get_weights()])
    _fit(model, [scores, resumed], epochs=4, initial_epoch=2)
    assert path.read_bytes() == saved
    assert (resumed.best, resumed.best_epoch) == (0.9, 1)
    _fit(model, [scores, resumed], epochs=5, initial_epoch=4)
    assert (resumed.best, resumed.best_epoch) == (0.95, 4)
    _assert_same(_weights(path), scores.weights[4])


@pytest.mark.parametrize("monitor, mode, scores, best_epoch", [
    ("val_loss", "auto", [1.0, 0.8, 0.9], 1),
    ("score", "min", [1.0, 1.2, 0.7], 2),
    ("score", "max", [1.0, 1.2, 0.7], 1),
])
def test_modes(tmp_path, monitor, mode, scores, best_epoch):
    class _Logs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs[monitor] = scores[epoch]

    checkpoint = BestModelCheckpoint(tmp_path / "m.keras", monitor=monitor,
                                     mode=mode)
    _fit(_model(), [_Logs(), checkpoint], epochs=3)
    assert checkpoint.best_epoch == best_epoch
    assert checkpoint.mode == ("min" if mode == "auto" else mode)


def test_epochs_with_a_non_finite_loss_or_score_are_never_saved(tmp_path):
    path = tmp_path / "best_model.keras"
    scores = _Scores([0.5, 0.9, float("inf"), 0.95],
                     losses=[1.0, float("nan"), 1.0, 1.0])
    checkpoint = BestModelCheckpoint(path, monitor="score")
    _fit(_model(), [scores, checkpoint], epochs=4)
    assert (checkpoint.best, checkpoint.best_epoch) == (0.95, 3)
    _fit(_model(), [_Scores([0.1]), checkpoint], epochs=1)  # worse: kept
    assert checkpoint.best == 0.95


def test_a_missing_monitor_saves_nothing(tmp_path):
    checkpoint = BestModelCheckpoint(tmp_path / "m.keras",
                                     monitor="val_accuracy")
    _fit(_model(), [checkpoint], epochs=1)
    assert checkpoint.best is None and list(tmp_path.iterdir()) == []


def test_temp_files_of_a_killed_save_are_removed_at_train_begin(tmp_path):
    for name in (".best_model.keras.ab12.tmp.keras", ".best_model.x81.keras",
                 ".best_model.best.json.zz.tmp", "other.keras"):
        (tmp_path / name).write_text("half")
    _fit(_model(), [BestModelCheckpoint(tmp_path / "best_model.keras")],
         epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.keras"]


@pytest.mark.parametrize("kwargs, argument", [
    ({"path": 3}, "path"),
    ({"path": "model.h5"}, "path"),
    ({"path": "m.keras", "mode": "best"}, "mode"),
])
def test_invalid_arguments(kwargs, argument):
    match = f"Invalid value received for argument `{argument}`"
    with pytest.raises(ValueError, match=match):
        BestModelCheckpoint(**kwargs)
