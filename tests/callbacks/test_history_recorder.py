"""HistoryRecorder: every epoch exactly once in an atomically written CSV."""

import csv

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import HistoryRecorder
from keras_regkit.callbacks.history_recorder import read_history_csv

from tests.helpers import toy_classifier, toy_data


def _data(n=64):
    return toy_data(n, classes=3)


def _model():
    return toy_classifier(keras.optimizers.SGD(0.05), classes=3, hidden=8,
                          metrics=["accuracy"])


def _fit(model, callbacks, epochs=3, initial_epoch=0):
    x, y = _data()
    return model.fit(x, y, validation_data=(x[:16], y[:16]), batch_size=16,
                     epochs=epochs, initial_epoch=initial_epoch,
                     shuffle=False, verbose=0, callbacks=callbacks)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class _Writes(keras.callbacks.Callback):
    """Reads the CSV after each epoch (placed after the recorder)."""

    def __init__(self, path):
        super().__init__()
        self.path, self.seen = path, []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append([int(r["epoch"]) for r in _rows(self.path)])


def test_each_epoch_is_written_once_as_it_ends(tmp_path):
    path = tmp_path / "run" / "history.csv"
    spy = _Writes(path)
    history = _fit(_model(), [HistoryRecorder(path), spy])
    assert spy.seen == [[0], [0, 1], [0, 1, 2]]
    rows = _rows(path)
    assert list(rows[0])[0] == "epoch"
    assert set(rows[0]) == {"epoch", "accuracy", "loss", "val_accuracy",
                            "val_loss", "learning_rate"}
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose([float(r[key]) for r in rows],
                                   history.history[key], rtol=1e-6)
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx(
        [0.05] * 3)
    assert sorted(p.name for p in path.parent.iterdir()) == ["history.csv"]


def test_a_resumed_fit_replaces_repeated_epochs_instead_of_duplicating(
        tmp_path):
    path = tmp_path / "history.csv"
    _fit(_model(), [HistoryRecorder(path)], epochs=3)
    old = _rows(path)
    recorder = HistoryRecorder(path)
    model = _model()
    history = _fit(model, [recorder], epochs=4, initial_epoch=1)
    rows = _rows(path)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert rows[0] == old[0]  # kept from the first fit
    np.testing.assert_allclose([float(r["loss"]) for r in rows[1:]],
                               history.history["loss"], rtol=1e-6)
    # history() gives every epoch of the file, like a Keras History.
    full = recorder.history()
    assert len(full["loss"]) == 4
    assert full["loss"][0] == float(old[0]["loss"])


def test_temp_files_of_a_killed_write_are_removed_at_train_begin(tmp_path):
    path = tmp_path / "history.csv"
    (tmp_path / ".history.csv.k3j2.tmp").write_text("half")
    (tmp_path / "notes.txt").write_text("mine")
    _fit(_model(), [HistoryRecorder(path)], epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv",
                                                         "notes.txt"]


def test_read_history_csv_parses_epochs_and_skips_empty_cells(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("epoch,loss,extra\n0,1.5,\n1,0.5,2.0\n")
    assert read_history_csv(path) == [{"epoch": 0, "loss": 1.5},
                                      {"epoch": 1, "loss": 0.5, "extra": 2.0}]
    assert read_history_csv(tmp_path / "missing.csv") == []
    recorder = HistoryRecorder(path)
    recorder.rows = read_history_csv(path)
    history = recorder.history()
    assert history["loss"] == [1.5, 0.5]
    assert np.isnan(history["extra"][0]) and history["extra"][1] == 2.0


def test_non_numeric_logs_are_left_out(tmp_path):
    recorder = HistoryRecorder(tmp_path / "h.csv")
    recorder.on_train_begin()
    recorder.on_epoch_end(0, {"loss": 1.0, "note": "text", "vec": [1, 2]})
    assert _rows(tmp_path / "h.csv") == [{"epoch": "0", "loss": "1.0"}]


def test_invalid_path():
    with pytest.raises(ValueError,
                       match="Invalid value received for argument `path`"):
        HistoryRecorder(3)
