"""RunBackup: an interrupted fit resumes from the committed epoch as if it
had never stopped, with the state of the callbacks given to it."""

import json

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import RunBackup

from tests.helpers import toy_classifier, toy_data

EPOCHS, BATCH, N = 5, 16, 64


def _data():
    return toy_data(N, classes=3)


def _model(seed=0):
    return toy_classifier(keras.optimizers.Adam(0.01), classes=3, hidden=8,
                          seed=seed)


def _fit(model, callbacks, epochs=EPOCHS):
    x, y = _data()
    return model.fit(x, y, validation_data=(x[:BATCH], y[:BATCH]),
                     batch_size=BATCH, epochs=epochs, shuffle=False,
                     verbose=0, callbacks=callbacks)


class _Kill(keras.callbacks.Callback):
    """Stops the process (as a kill would) at the end of one epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated kill")


class _Counter(keras.callbacks.Callback):
    """A callback with the resume protocol: a count and a running sum."""

    def __init__(self):
        super().__init__()
        self.count, self.total, self.restored = 0, np.zeros(3), None

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1
        self.total += float(logs["loss"])

    def backup_state(self):
        return {"count": self.count}, [self.total.copy()]

    def restore_backup_state(self, state, arrays):
        self.restored = (state, arrays)
        self.count, self.total = state["count"], np.array(arrays[0])


def test_a_killed_fit_resumes_from_the_committed_epoch(tmp_path):
    whole = _model()
    whole_history = _fit(whole, [])
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), [RunBackup(tmp_path), _Kill(epoch=2)])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epoch"] == 3  # epochs 0, 1, 2 committed
    resumed = _model(seed=1)  # other initial weights: the backup wins
    history = _fit(resumed, [RunBackup(tmp_path)])
    assert history.epoch == [3, 4]
    assert int(resumed.optimizer.iterations.numpy()) == EPOCHS * N // BATCH
    np.testing.assert_allclose(history.history["loss"],
                               whole_history.history["loss"][3:], rtol=1e-5)
    for got, want in zip(resumed.get_weights(), whole.get_weights(),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_callback_with_backup_state_gets_its_state_back(tmp_path):
    counter = _Counter()
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), [counter, RunBackup(tmp_path, [counter]),
                        _Kill(epoch=1)])
    committed = (counter.count, counter.total.copy())
    assert committed[0] == 2 * N // BATCH
    again = _Counter()
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), [again, RunBackup(tmp_path, [again]), _Kill(epoch=2)])
    state, arrays = again.restored
    assert state == {"count": committed[0]}
    np.testing.assert_array_equal(arrays[0], committed[1])
    assert again.count == 3 * N // BATCH  # counted on from the backup


def test_early_stopping_state_survives_the_resume(tmp_path):
    def early():
        return keras.callbacks.EarlyStopping(patience=10,
                                             restore_best_weights=True)

    first = early()
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), [first, RunBackup(tmp_path, [first]), _Kill(epoch=2)])
    seen = (first.wait, first.best, first.best_epoch)
    best_weights = first.best_weights
    second = early()

    class _Peek(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.seen = (second.wait, second.best, second.best_epoch)
            self.weights = second.best_weights
            raise KeyboardInterrupt("peeked")

    peek = _Peek()
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), [second, RunBackup(tmp_path, [second]), peek])
    assert peek.seen == seen
    for got, want in zip(peek.weights, best_weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_files_of_a_killed_commit_are_deleted_on_resume(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), [RunBackup(tmp_path), _Kill(epoch=0)])
    (tmp_path / ".epoch-00002.weights.h5.ab12.tmp.weights.h5").write_text("x")
    (tmp_path / "epoch-00002.weights.h5").write_text("not committed")
    _fit(_model(), [RunBackup(tmp_path)], epochs=1)  # epoch 0 is done
    state = json.loads((tmp_path / "state.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["state.json"] + state["files"])
    assert state["files"] == ["epoch-00001.weights.h5"]


def test_each_commit_keeps_only_the_files_it_names(tmp_path):
    _fit(_model(), [RunBackup(tmp_path)], epochs=3)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch-00003.weights.h5", "state.json"]


def test_delete_on_end_removes_the_folder(tmp_path):
    backup = tmp_path / "backup"
    _fit(_model(), [RunBackup(backup, delete_on_end=True)], epochs=1)
    assert not backup.exists()


@pytest.mark.parametrize("kwargs, argument", [
    ({"backup_dir": 3}, "backup_dir"),
    ({"backup_dir": "b", "callbacks": [keras.callbacks.History()]},
     "callbacks"),
])
def test_invalid_arguments(kwargs, argument):
    match = f"Invalid value received for argument `{argument}`"
    with pytest.raises(ValueError, match=match):
        RunBackup(**kwargs)
