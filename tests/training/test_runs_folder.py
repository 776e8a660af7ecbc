"""RunFolder: a run folder's file names, its callbacks and the commit order."""

import json
import os

import keras
import numpy as np
import pytest

from keras_regkit.callbacks import (BestModelCheckpoint, HistoryRecorder,
                                    NaNGuard, RunBackup)
from keras_regkit.models.presets import get_preset
from keras_regkit.training.runs import RUN_FILES, RunFolder


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _fit(model, callbacks, epochs=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return model.fit(x, y, validation_data=(x[:16], y[:16]), batch_size=16,
                     epochs=epochs, shuffle=False, verbose=0,
                     callbacks=callbacks)


def test_file_names(tmp_path):
    folder = RunFolder(tmp_path / "run")
    names = {
        "config": "config.yaml", "history_csv": "history.csv",
        "best_model": "best_model.keras", "final_model": "final_model.keras",
        "summary": "summary.json", "training_curves": "training_curves.png",
        "detector_state": "overfitting_detector.json", "backup_dir": "backup",
        "log_dir": "logs",
    }
    for attribute, name in names.items():
        assert getattr(folder, attribute) == tmp_path / "run" / name
    assert set(RUN_FILES) == {
        "config.yaml", "history.csv", "best_model.keras",
        "best_model.best.json", "final_model.keras", "summary.json",
        "training_curves.png", "overfitting_detector.json"}


def test_its_callbacks_write_its_files_and_the_backup_is_last(tmp_path):
    folder = RunFolder(tmp_path)
    early = keras.callbacks.EarlyStopping()
    checkpoint, recorder, backup = folder.callbacks("val_accuracy", [early])
    assert isinstance(checkpoint, BestModelCheckpoint)
    assert checkpoint.path == folder.best_model
    assert checkpoint.monitor == "val_accuracy"
    assert isinstance(recorder, HistoryRecorder)
    assert recorder.path == folder.history_csv
    assert isinstance(backup, RunBackup)
    assert backup.backup_dir == folder.backup_dir
    assert backup.callbacks == [early]


def test_commit_order_puts_the_guard_first_and_the_backup_last(tmp_path):
    folder = RunFolder(tmp_path)
    guard, early = NaNGuard(), keras.callbacks.EarlyStopping()
    mine, other = keras.callbacks.History(), keras.callbacks.History()
    records = folder.callbacks("val_accuracy", [early])
    ordered = RunFolder.commit_order([early, *records, mine, guard, other])
    assert ordered == [guard, early, *records[:2], mine, other, records[2]]
    assert RunFolder.commit_order(ordered) == ordered


class _Order(keras.callbacks.Callback):
    """Records, at each epoch end, which run files exist at that point."""

    def __init__(self, folder):
        super().__init__()
        self.folder, self.seen = folder, []

    def on_epoch_end(self, epoch, logs=None):
        state = self.folder.backup_dir / "state.json"
        committed = (json.loads(state.read_text())["epoch"]
                     if state.exists() else 0)
        self.seen.append((epoch, committed))


def test_at_each_epoch_end_the_records_are_written_before_the_commit(
        tmp_path):
    folder = RunFolder(tmp_path)
    probe = _Order(folder)
    callbacks = RunFolder.commit_order(
        [*folder.callbacks("val_accuracy"), probe])
    _fit(_model(), callbacks)
    # The probe, placed after the records, ran before the backup committed.
    assert probe.seen == [(0, 0), (1, 1)]
    assert json.loads((folder.backup_dir / "state.json").read_text())[
        "epoch"] == 2
    assert folder.history_csv.exists() and folder.best_model.exists()


def test_finish_writes_the_summary_last_then_removes_the_backup(
        tmp_path, monkeypatch):
    folder = RunFolder(tmp_path)
    model = _model()
    history = _fit(model, folder.callbacks("val_accuracy"))
    order = []
    real_replace = os.replace

    def recording_replace(src, dst):
        order.append(os.path.basename(dst))
        real_replace(src, dst)

    def plot(full, path):
        assert not folder.summary.exists()
        assert list(full) == list(history.history)
        path.write_bytes(b"png")
        order.append("plot")

    monkeypatch.setattr(os, "replace", recording_replace)
    summary = folder.finish(model, history, 2.0, n_images=32,
                            info={"preset": "tiny", "seed": 0}, plot=plot)
    assert order == ["final_model.keras", "plot", "summary.json"]
    assert not folder.backup_dir.exists()
    assert json.loads(folder.summary.read_text()) == json.loads(
        json.dumps(summary))
    assert summary["preset"] == "tiny" and summary["seed"] == 0
    assert summary["epochs_recorded"] == summary["epochs_this_run"] == 2
    assert summary["images_per_s"] == pytest.approx(32 * 2 / 2.0)
    assert summary["best_val_loss"] == min(history.history["val_loss"])
    keras.saving.load_model(folder.final_model)


def test_a_failing_plot_only_warns(tmp_path):
    folder = RunFolder(tmp_path)
    model = _model()
    history = _fit(model, folder.callbacks("val_accuracy"), epochs=1)

    def plot(full, path):
        raise RuntimeError("no display")

    with pytest.warns(UserWarning, match="no display"):
        folder.finish(model, history, 1.0, plot=plot)
    assert folder.summary.exists() and folder.is_finished()


def test_finish_gives_the_history_every_epoch_of_the_folder(tmp_path):
    folder = RunFolder(tmp_path)
    _fit(_model(), folder.callbacks("val_accuracy"), epochs=3)
    model = _model()
    history = model.fit(np.zeros((16, 4), "float32"), np.zeros(16, "int32"),
                        initial_epoch=2, epochs=3, verbose=0,
                        callbacks=[HistoryRecorder(folder.history_csv)])
    summary = folder.finish(model, history, 1.0)
    assert len(history.history["loss"]) == 3
    assert (summary["epochs_recorded"], summary["epochs_this_run"]) == (3, 1)


def test_prepare_refuses_a_finished_run_unless_overwrite(tmp_path):
    folder = RunFolder(tmp_path)
    preset = get_preset("small")
    folder.write_config(preset)
    folder.summary.write_text("{}")
    folder.backup_dir.mkdir()
    (folder.backup_dir / "state.json").write_text("{}")
    with pytest.raises(FileExistsError, match="overwrite"):
        folder.prepare(preset)
    assert folder.is_finished()
    folder.prepare(preset, overwrite=True)
    assert folder.existing_files() == [] and not folder.backup_dir.exists()


def test_prepare_resumes_only_with_the_same_config(tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_config(get_preset("small"))
    (tmp_path / ".history.csv.ab12.tmp").write_text("half")
    folder.prepare(get_preset("small"))  # same config: resumes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
    with pytest.raises(ValueError, match="different config: .*epochs=5"):
        folder.prepare(get_preset("small", epochs=5))
