"""Interrupted runs: a run killed with SIGKILL resumes as if never stopped.

The SIGKILL tests run `tests/_drivers/train_run.py` (a tiny preset on the
embedded CIFAR-10 sample, 3 epochs of 10 steps, cosine learning rate) in a
subprocess that pauses at a chosen point (mid-epoch, or halfway through
writing a checkpoint) and is killed there by the test.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_regkit import _atomic
from keras_regkit.callbacks import BestModelCheckpoint, RunBackup
from keras_regkit.callbacks.best_model_checkpoint import CHECKPOINT_MEMBER
from keras_regkit.data import load_cifar10_sample
from tests._drivers.train_run import CONFIG, N_TRAIN, N_VAL, tiny_builder

DRIVER = Path(__file__).parents[1] / "_drivers" / "train_run.py"
STEPS = N_TRAIN // CONFIG["batch_size"]


@pytest.fixture(scope="module")
def sample():
    (x, y), (x_val, y_val) = load_cifar10_sample()
    return x[:N_TRAIN], y[:N_TRAIN], x_val[:N_VAL], y_val[:N_VAL]


def kill_when_paused(run_dir, hook, tmp_path, timeout=300):
    """Runs the driver with `hook` and SIGKILLs it once it has paused."""
    marker = tmp_path / f"paused-{hook.replace(':', '-')}"
    log = tmp_path / f"log-{hook.replace(':', '-')}.txt"
    env = dict(os.environ, REGKIT_DRIVER_HOOK=hook,
               REGKIT_DRIVER_MARKER=str(marker), TF_CPP_MIN_LOG_LEVEL="2")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(DRIVER), str(run_dir),
             str(tmp_path / "report.json")],
            env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"driver with {hook} never paused:\n"
                            + log.read_text()[-3000:])
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def history_epochs(run_dir):
    with open(run_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def committed_epochs(run_dir):
    return json.loads((run_dir / "backup" / "state.json").read_text())["epoch"]


def temp_files(run_dir):
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob(".*"))


def stored_best(path):
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return json.loads(archive.read(CHECKPOINT_MEMBER))["best"]


def check_final_names_complete(run_dir):
    """Every file under its final name is whole and loads (safe mode)."""
    for name in ("best_model.keras", "final_model.keras"):
        if (run_dir / name).exists():
            keras.saving.load_model(run_dir / name)
    for name in ("summary.json", "best_model.best.json",
                 "overfitting_detector.json"):
        if (run_dir / name).exists():
            json.loads((run_dir / name).read_text())
    assert history_epochs(run_dir) == sorted(set(history_epochs(run_dir)))


def schedule(epochs):
    """Learning rates an uninterrupted run records at each epoch's end."""
    builder = tiny_builder()
    model = builder.compile_model(builder.build_model(), learning_rate=None,
                                  steps_per_epoch=STEPS, epochs=epochs)
    rates = []
    for epoch in range(epochs):
        model.optimizer.iterations.assign((epoch + 1) * STEPS)
        rates.append(float(model.optimizer.learning_rate))
    return rates


# The kill points are file writes, the same on every backend; the
# builder's resume on JAX and PyTorch is tested in test_builder.py.
@pytest.mark.tensorflow_pass
@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigkilled_run_resumes_as_if_never_stopped(sample, tmp_path):
    run, epochs = tmp_path / "run", CONFIG["epochs"]
    # 1. Killed in the middle of the second epoch: the first one is kept.
    kill_when_paused(run, "batch:1:4", tmp_path)
    assert history_epochs(run) == [0] and committed_epochs(run) == 1
    assert temp_files(run) == [] and not (run / "summary.json").exists()
    check_final_names_complete(run)
    # 2. Killed while the backup of that epoch was half written: the epoch
    # is not committed, the half file is never read.
    kill_when_paused(run, "weights_save:1", tmp_path)
    assert committed_epochs(run) == 1 and history_epochs(run) == [0, 1]
    assert any(name.startswith("backup/.") for name in temp_files(run))
    # 3. Killed halfway through the next `.keras` write (best model, or the
    # final model if no epoch improved): the file under its name is whole.
    kill_when_paused(run, "keras_save:1", tmp_path)
    assert any(name.endswith(".keras") for name in temp_files(run))
    assert not (run / "summary.json").exists()
    check_final_names_complete(run)
    resume_at = committed_epochs(run)
    assert resume_at >= 1
    # 4. The same call again finishes the run.
    model, history = tiny_builder().train(*sample, run_dir=run, verbose=0)
    assert history.epoch == list(range(resume_at, epochs))  # not from 0
    assert int(model.optimizer.iterations.numpy()) == epochs * STEPS
    assert history_epochs(run) == list(range(epochs))
    assert temp_files(run) == [] and not (run / "backup").exists()
    check_final_names_complete(run)
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_allclose([float(r["learning_rate"]) for r in rows],
                               schedule(epochs), rtol=1e-6)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_recorded"] == epochs
    assert set(summary["final"]) >= {"loss", "val_loss", "val_accuracy"}
    # The best model is the best epoch ever seen, never a later, worse one.
    val_acc = [float(r["val_accuracy"]) for r in rows]
    best = stored_best(run / "best_model.keras")
    assert best >= max(val_acc) - 1e-7
    x_val, y_val = sample[2:]
    builder = tiny_builder()
    best_model = keras.saving.load_model(run / "best_model.keras")
    assert builder.evaluate(best_model, x_val, y_val)["accuracy"] == (
        pytest.approx(best, abs=1e-6))
    # EarlyStopping's best weights (lowest val_loss) survived the kills.
    final = keras.saving.load_model(run / "final_model.keras")
    assert builder.evaluate(final, x_val, y_val)["loss"] == pytest.approx(
        min(float(r["val_loss"]) for r in rows), abs=2e-3)


class _PoisonWeights(keras.callbacks.Callback):
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


@pytest.mark.slow
def test_nan_loss_stops_at_that_batch_and_keeps_the_last_good_files(
        sample, tmp_path):
    x, y, x_val, y_val = sample
    data = (x[:200], y[:200], x_val[:100], y_val[:100])  # 2 steps an epoch
    run = tmp_path / "run"
    with pytest.raises(FloatingPointError) as info:
        tiny_builder().train(*data, run_dir=run, verbose=0,
                             callbacks=[_PoisonWeights(epoch=1, batch=0)])
    message = str(info.value)
    assert "`loss` became nan at epoch 2, batch 2" in message
    assert "learning rate" in message and "NaN or inf" in message
    assert history_epochs(run) == [0]
    assert committed_epochs(run) == 1 and not (run / "summary.json").exists()
    best = keras.saving.load_model(run / "best_model.keras")
    assert all(np.isfinite(w).all() for w in best.get_weights())
    # Resuming starts from the last good epoch, not from the NaN weights.
    model, history = tiny_builder().train(*data, run_dir=run, verbose=0)
    assert history.epoch == [1, 2]
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert history_epochs(run) == [0, 1, 2]


def _dense_model(built=True):
    layers = [keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    model = keras.Sequential(([keras.Input((32, 32, 3))] if built else [])
                             + layers)
    model.compile(keras.optimizers.Adam(1e-3),
                  "sparse_categorical_crossentropy")
    return model


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.watch, self.seen = epoch, None, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.seen = _snapshot(self.model, self.watch)
            raise KeyboardInterrupt("simulated kill")


class _Probe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.watch, self.seen, self.first_epoch = None, None, None

    def on_train_begin(self, logs=None):
        self.seen = _snapshot(self.model, self.watch)

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch


def _snapshot(model, watch):
    early, plateau = watch
    return {
        "weights": model.get_weights(),
        "iterations": int(model.optimizer.iterations.numpy()),
        "learning_rate": float(model.optimizer.learning_rate),
        "early": (early.wait, early.best, early.best_epoch),
        "best_weights": early.best_weights,
        "plateau": (plateau.wait, plateau.best, plateau.cooldown_counter),
    }


def _fit_with_backup(model, x, y, backup, last):
    early = keras.callbacks.EarlyStopping(patience=50,
                                          restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1,
                                                cooldown=1)
    last.watch = (early, plateau)
    model.fit(x, y, validation_data=(x[:32], y[:32]), epochs=5,
              batch_size=16, verbose=0,
              callbacks=[early, plateau,
                         RunBackup(backup, last.watch), last])


def test_backup_restores_weights_optimizer_and_best_so_far_state(
        cifar10_batch, tmp_path):
    # Keras's BackupAndRestore keeps neither EarlyStopping's nor
    # ReduceLROnPlateau's state: both would start again from scratch.
    x, y = cifar10_batch
    stop = _StopAfter(epoch=2)
    with pytest.raises(KeyboardInterrupt):
        _fit_with_backup(_dense_model(), x, y, tmp_path, stop)
    before = stop.seen  # just after epoch 2 was committed
    probe = _Probe()
    _fit_with_backup(_dense_model(), x, y, tmp_path, probe)  # fresh model
    after = probe.seen
    assert probe.first_epoch == 3
    assert after["iterations"] == before["iterations"] == 3 * 4
    assert after["learning_rate"] == before["learning_rate"]
    assert after["early"] == before["early"]
    assert after["plateau"] == before["plateau"]
    for got, want in zip(after["weights"] + after["best_weights"],
                         before["weights"] + before["best_weights"],
                         strict=True):
        np.testing.assert_array_equal(got, want)


# JAX's and PyTorch's fit build the model before `on_train_begin`: the
# pitfall exists on TensorFlow only.
@pytest.mark.requires_tensorflow
def test_resuming_an_unbuilt_model_fails_instead_of_restarting(
        cifar10_batch, tmp_path):
    # The Keras pitfall: a backup restored before the model is built would
    # start the run again from epoch 0. Here it fails and keeps the backup.
    x, y = cifar10_batch
    with pytest.raises(KeyboardInterrupt):
        _fit_with_backup(_dense_model(), x, y, tmp_path, _StopAfter(epoch=1))
    state = (tmp_path / "state.json").read_text()
    with pytest.raises(ValueError, match="not built.*keras.Input"):
        _fit_with_backup(_dense_model(built=False), x, y, tmp_path, _Probe())
    assert (tmp_path / "state.json").read_text() == state
    assert json.loads(state)["epoch"] == 2


def test_best_model_is_never_replaced_by_a_worse_one_after_resume(tmp_path):
    # Keras's ModelCheckpoint(save_best_only=True) starts from -inf on
    # resume and overwrites the best model with the first epoch it sees.
    model = _dense_model()
    path = tmp_path / "best_model.keras"
    first = BestModelCheckpoint(path)
    first.set_model(model)
    first.on_train_begin()
    first.on_epoch_end(0, {"loss": 2.0, "val_accuracy": 0.5})
    first.on_epoch_end(1, {"loss": 1.9, "val_accuracy": 0.7})
    saved = path.read_bytes()
    # A kill between the model's rename and its readable copy: the copy
    # lags, the score inside the archive does not.
    first.state_path.write_text(json.dumps(
        {"monitor": "val_accuracy", "best": 0.5, "epoch": 0}))
    model.set_weights([w + 1.0 for w in model.get_weights()])
    resumed = BestModelCheckpoint(path)
    resumed.set_model(model)
    resumed.on_train_begin()
    assert (resumed.best, resumed.best_epoch) == (0.7, 1)
    resumed.on_epoch_end(2, {"loss": 1.8, "val_accuracy": 0.6})
    resumed.on_epoch_end(3, {"loss": float("nan"), "val_accuracy": 0.9})
    assert path.read_bytes() == saved
    resumed.on_epoch_end(4, {"loss": 1.7, "val_accuracy": 0.8})
    assert stored_best(path) == 0.8
    reloaded = keras.saving.load_model(path, compile=False)
    for got, want in zip(reloaded.get_weights(), model.get_weights(),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    assert json.loads(first.state_path.read_text())["epoch"] == 4


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp(
        tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    _atomic.atomic_write_json(path, {"epochs": 1})

    def crash(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        _atomic.atomic_write_json(path, {"epochs": 2})
    assert json.loads(path.read_text()) == {"epochs": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_temp_files_of_a_killed_write_are_removed_on_resume(tmp_path):
    for name in (".history.csv.k3j2", ".best_model.x81.keras",
                 ".config.yaml.abc.tmp", "history.csv", ".keep"):
        (tmp_path / name).write_text("x")
    removed = _atomic.remove_temp_files(
        tmp_path, ["history.csv", "best_model.keras", "config.yaml"])
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep",
                                                          "history.csv"]
