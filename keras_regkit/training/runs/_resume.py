"""Resuming an interrupted run: the epoch backup and the NaN guard.

`RunBackup` replaces `keras.callbacks.BackupAndRestore`, which writes its
weights and its epoch in two steps and forgets the state of `EarlyStopping`
and `ReduceLROnPlateau`; `NaNGuard` replaces `TerminateOnNaN`, which lets the
bad epoch be logged, checkpointed and backed up.
"""

import io
import json
import math
import numbers
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from keras_regkit.training.runs._files import _sync
from keras_regkit.training.runs._files import atomic_write_bytes
from keras_regkit.training.runs._files import atomic_write_text


class NaNGuard(keras.callbacks.TerminateOnNaN):
    """Stops training at the first NaN or inf loss, before it reaches disk.

    Keras's `TerminateOnNaN` lets the bad epoch end: its weights are then
    backed up, checkpointed and logged. This guard raises
    `FloatingPointError` from the batch (or, for the validation loss, before
    the callbacks after it see the epoch), so the run folder keeps the last
    good epoch and the message says where it happened and what to try.
    """

    def __init__(self):
        super().__init__(raise_error=True)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _check(self, logs, keys, where):
        for key in keys:
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                raise FloatingPointError(
                    f"Training stopped: `{key}` became {float(value)} at "
                    f"epoch {self.epoch + 1}{where} (1-based). Nothing from "
                    "this epoch was saved: a run folder keeps the last good "
                    "epoch (history, best model, backup). Try a lower "
                    "learning rate (e.g. half), check the data for NaN or inf"
                    " values and labels out of range, or clip gradients "
                    "(optimizer `clipnorm=1.0`).")

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, ("loss",), f", batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, ("loss", "val_loss"), "")


_CALLBACK_STATE = (
    (keras.callbacks.EarlyStopping, ("wait", "best", "best_epoch")),
    (keras.callbacks.ReduceLROnPlateau, ("wait", "best", "cooldown_counter")),
)


class RunBackup(keras.callbacks.Callback):
    """Backs the training state up each epoch; restores it when resumed.

    Like `keras.callbacks.BackupAndRestore`, but each epoch is committed by
    one atomic write: the weights and optimizer state (so the step count
    that drives the learning-rate schedule) go to a new file, then
    `state.json`, naming that file and the epoch, replaces the previous
    one. A run killed at any moment resumes from the last committed epoch.
    The state of the given `EarlyStopping` and `ReduceLROnPlateau` callbacks
    (best value, wait, best weights), which Keras resets on every `fit`, is
    committed with it, and so is that of any given callback with
    `backup_state()` / `restore_backup_state(state, arrays)` (`Lookahead`:
    its step and slow weights). Put this callback after those whose files
    must be complete for a committed epoch (history, checkpoint). The folder
    belongs to the callback: files in it that the last commit does not name
    (left by a killed write) are deleted.

    Args:
        backup_dir: the backup folder.
        callbacks: `EarlyStopping`/`ReduceLROnPlateau` callbacks, or
            callbacks with `backup_state`, whose state is kept. Defaults to
            `()`. Put this callback after them.
        delete_on_end: remove the folder when training ends normally.
            Defaults to `False` (remove it once the run's files are written).
    """

    def __init__(self, backup_dir, callbacks=(), delete_on_end=False):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.callbacks = list(callbacks)
        self.delete_on_end = delete_on_end

    def _state(self):
        path = self.backup_dir / "state.json"
        return json.loads(path.read_text()) if path.exists() else None

    def _keep_only(self, state):
        keep = {"state.json"} | set((state or {}).get("files", []))
        for file in self.backup_dir.iterdir():
            if file.name not in keep:
                file.unlink()

    def on_train_begin(self, logs=None):
        state = self._state() if self.backup_dir.is_dir() else None
        if self.backup_dir.is_dir():
            self._keep_only(state)
        if state is None:
            return
        if not self.model.built:
            raise ValueError(
                f"Cannot resume from the backup in {self.backup_dir}: the "
                "model is not built, so its weights cannot be restored (and "
                "starting again from epoch 0 would lose the run). Build it "
                "before `fit` (start it with `keras.Input`).")
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.backup_dir / state["weights"])
        best = {}
        if state.get("best_weights"):
            with np.load(self.backup_dir / state["best_weights"]) as data:
                best = {k: data[k] for k in data.files}
        own = {}
        if state.get("callback_arrays"):
            with np.load(self.backup_dir / state["callback_arrays"]) as data:
                own = {k: data[k] for k in data.files}
        for i, (callback, saved) in enumerate(
                zip(self.callbacks, state["callbacks"])):
            if hasattr(callback, "restore_backup_state"):
                count = sum(1 for k in own if k.startswith(f"{i}_"))
                callback.restore_backup_state(
                    saved, [own[f"{i}_{j}"] for j in range(count)])
                continue
            for name, value in saved.items():
                setattr(callback, name, value)
            count = sum(1 for k in best if k.startswith(f"{i}_"))
            if count:
                callback.best_weights = [best[f"{i}_{j}"]
                                         for j in range(count)]
        # Keras's own BackupAndRestore resumes fit through this attribute.
        self.model._initial_epoch = state["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        previous = self._state() or {}
        weights = f"epoch-{epoch + 1:05d}.weights.h5"
        fd, tmp = tempfile.mkstemp(dir=self.backup_dir, prefix=".",
                                   suffix=".weights.h5")
        os.close(fd)
        self.model.save_weights(tmp, overwrite=True)
        _sync(tmp)
        os.replace(tmp, self.backup_dir / weights)
        saved, arrays, own = [], {}, {}
        for i, callback in enumerate(self.callbacks):
            if hasattr(callback, "backup_state"):
                values, callback_arrays = callback.backup_state()
                saved.append(dict(values))
                own.update({f"{i}_{j}": np.asarray(a)
                            for j, a in enumerate(callback_arrays)})
                continue
            names = next(n for t, n in _CALLBACK_STATE
                         if isinstance(callback, t))
            saved.append({n: _number(getattr(callback, n)) for n in names})
            best = getattr(callback, "best_weights", None) or ()
            arrays.update({f"{i}_{j}": w for j, w in enumerate(best)})
        best_file = previous.get("best_weights")
        if arrays and (best_file is None or previous.get("best_epochs") != [
                s.get("best_epoch") for s in saved]):
            best_file = f"best-{epoch + 1:05d}.npz"
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            atomic_write_bytes(self.backup_dir / best_file, buffer.getvalue())
        own_file = None
        if own:  # changes every epoch (Lookahead's slow weights)
            own_file = f"callbacks-{epoch + 1:05d}.npz"
            buffer = io.BytesIO()
            np.savez(buffer, **own)
            atomic_write_bytes(self.backup_dir / own_file, buffer.getvalue())
        state = {
            "epoch": epoch + 1, "weights": weights, "callbacks": saved,
            "best_weights": best_file if arrays else None,
            "best_epochs": [s.get("best_epoch") for s in saved],
            "callback_arrays": own_file,
            "files": [weights] + ([best_file] if arrays else [])
            + ([own_file] if own_file else []),
        }
        # The commit point (json.dumps keeps inf, which Keras uses as "best").
        atomic_write_text(self.backup_dir / "state.json", json.dumps(state))
        self._keep_only(state)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None
        if self.delete_on_end:
            remove_backup(self.backup_dir)


def _number(value):
    """A callback's state value (None, int or float, inf kept) for JSON."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def remove_backup(backup_dir):
    """Deletes a `RunBackup` folder (after the run's final files)."""
    backup_dir = Path(backup_dir)
    if backup_dir.is_dir():
        for file in backup_dir.iterdir():
            file.unlink()
        backup_dir.rmdir()
