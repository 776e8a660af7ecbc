"""RunBackup: an epoch backup committed atomically, for resuming a `fit`."""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_regkit._atomic import atomic_path
from keras_regkit._atomic import atomic_write
from keras_regkit._atomic import atomic_write_text
from keras_regkit._typing import Logs, StrPath
from keras_regkit._validation import invalid

STATE_FILE = "state.json"

# Keras callbacks whose best-so-far state `RunBackup` keeps (Keras resets it
# at every `fit`): the attributes saved, plus `best_weights` if present.
_KERAS_STATE = (
    (keras.callbacks.EarlyStopping, ("wait", "best", "best_epoch")),
    (keras.callbacks.ReduceLROnPlateau, ("wait", "best", "cooldown_counter")),
)


def remove_backup(backup_dir: StrPath) -> None:
    """Deletes a `RunBackup` folder (once the run's own files are written).

    Args:
        backup_dir: the folder; nothing happens if it does not exist.
    """
    backup_dir = Path(backup_dir)
    if backup_dir.is_dir():
        for file in backup_dir.iterdir():
            file.unlink()
        backup_dir.rmdir()


class RunBackup(keras.callbacks.Callback):
    """Backs the training state up each epoch; restores it when resumed.

    Like `keras.callbacks.BackupAndRestore`, but each epoch is committed by
    one atomic write, and the state of other callbacks goes with it. At each
    epoch end the model's weights and optimizer state (so the step count
    that drives a learning-rate schedule) go to a new file, then
    `state.json`, naming that file and the epoch, replaces the previous one:
    that rename is the commit. A process killed at any moment resumes from
    the last committed epoch: the next `fit` with a `RunBackup` on the same
    folder restores the weights and starts at that epoch. The folder belongs
    to the callback: files in it that the last commit does not name (left
    by a killed write) are deleted.

    The resume protocol. Keras resets the state of its callbacks at every
    `fit`; `RunBackup` commits the state of the callbacks given to it in
    `callbacks` with each epoch, and gives it back before training resumes:

    - `keras.callbacks.EarlyStopping` and `ReduceLROnPlateau`: their
      `wait`, `best`, `best_epoch` / `cooldown_counter` and best weights;
    - any callback with the two methods
      `backup_state() -> (values, arrays)`, where `values` is a
      JSON-serializable dict and `arrays` a list of NumPy arrays, and
      `restore_backup_state(values, arrays)`, which receives them back.
      `restore_backup_state` is called from `RunBackup.on_train_begin`,
      possibly before the callback's own `on_train_begin` (`Lookahead`
      keeps the state and applies it there). `Lookahead` implements it for
      its step and slow weights.

    Put `RunBackup` after every callback whose files must be complete for a
    committed epoch (`HistoryRecorder`, `BestModelCheckpoint`): callbacks
    run in list order, so a run killed between their write and the commit
    repeats the epoch, and those callbacks replace their copy of it.

    Args:
        backup_dir: the backup folder.
        callbacks: callbacks whose state is committed with each epoch:
            `EarlyStopping`, `ReduceLROnPlateau`, or any callback with
            `backup_state` / `restore_backup_state`. Defaults to `()`.
        delete_on_end: remove the folder when training ends normally.
            Defaults to `False` (the run's owner removes it once its own
            files are written, see `remove_backup`).
        info: a JSON-serializable dict committed with every epoch, for the
            run's owner to check before resuming (`RunFolder` records the
            number of workers). `read_backup_info` reads it back. Defaults
            to `None`.

    Example:

    ```python
    early = keras.callbacks.EarlyStopping(patience=5,
                                          restore_best_weights=True)
    backup = RunBackup("run/backup", callbacks=[early])
    model.fit(x, y, epochs=50, validation_split=0.2,
              callbacks=[early, HistoryRecorder("run/history.csv"), backup])
    # Killed at epoch 12? The same call resumes at epoch 12, with
    # EarlyStopping's best value, patience count and best weights.
    ```
    """

    def __init__(self, backup_dir: StrPath,
                 callbacks: Iterable[keras.callbacks.Callback] = (),
                 delete_on_end: bool = False,
                 info: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)):
            raise invalid("backup_dir", backup_dir, "a folder path")
        callbacks = list(callbacks)
        for callback in callbacks:
            if not _keeps_state(callback):
                raise invalid(
                    "callbacks", callback,
                    "EarlyStopping, ReduceLROnPlateau or callbacks with "
                    "`backup_state` and `restore_backup_state`")
        self.backup_dir = Path(backup_dir)
        self.callbacks = callbacks
        self.delete_on_end = bool(delete_on_end)
        if info is not None and not isinstance(info, Mapping):
            raise invalid("info", info, "None or a JSON-serializable dict")
        self.info = dict(info or {})

    def on_train_begin(self, logs: Logs | None = None) -> None:
        state = self._load_commit()
        if state is None:
            return
        self._restore_model(state)
        self._restore_callbacks(state)
        # Keras's own BackupAndRestore resumes fit through this attribute.
        self.model._initial_epoch = state["epoch"]

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        previous = self._read_state() or {}
        weights = self._save_weights(epoch)
        saved, best, own = self._callback_states()
        best_file = self._save_best_weights(epoch, previous, saved, best)
        own_file = self._save_arrays(f"callbacks-{epoch + 1:05d}.npz", own)
        state = {
            "epoch": epoch + 1, "weights": weights, "callbacks": saved,
            "best_weights": best_file,
            "best_epochs": [s.get("best_epoch") for s in saved],
            "callback_arrays": own_file,
            "files": [f for f in (weights, best_file, own_file) if f],
            "info": self.info,
        }
        self._commit(state)

    def on_train_end(self, logs: Logs | None = None) -> None:
        self.model._initial_epoch = None
        if self.delete_on_end:
            remove_backup(self.backup_dir)

    # Resuming.

    def _read_state(self) -> dict[str, Any] | None:
        path = self.backup_dir / STATE_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def _load_commit(self) -> dict[str, Any] | None:
        """The last commit, after deleting the files it does not name."""
        if not self.backup_dir.is_dir():
            return None
        state = self._read_state()
        self._keep_only(state)
        return state

    def _restore_model(self, state: Mapping[str, Any]) -> None:
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

    def _restore_callbacks(self, state: Mapping[str, Any]) -> None:
        best = self._load_arrays(state.get("best_weights"))
        own = self._load_arrays(state.get("callback_arrays"))
        for i, (callback, saved) in enumerate(
                zip(self.callbacks, state["callbacks"])):
            if hasattr(callback, "restore_backup_state"):
                callback.restore_backup_state(saved, _numbered(own, i))
                continue
            for name, value in saved.items():
                setattr(callback, name, value)
            best_weights = _numbered(best, i)
            if best_weights:
                callback.best_weights = best_weights

    def _load_arrays(self, name: str | None) -> dict[str, np.ndarray]:
        if not name:
            return {}
        with np.load(self.backup_dir / name) as data:
            return {k: data[k] for k in data.files}

    # Committing an epoch.

    def _save_weights(self, epoch: int) -> str:
        name = f"epoch-{epoch + 1:05d}.weights.h5"
        with atomic_path(self.backup_dir / name, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp, overwrite=True)
        return name

    def _callback_states(self) -> tuple[list[dict[str, Any]],
                                        dict[str, np.ndarray],
                                        dict[str, np.ndarray]]:
        """Each callback's values, Keras best weights and own arrays."""
        saved: list[dict[str, Any]] = []
        best: dict[str, np.ndarray] = {}
        own: dict[str, np.ndarray] = {}
        for i, callback in enumerate(self.callbacks):
            if hasattr(callback, "backup_state"):
                values, arrays = callback.backup_state()
                saved.append(dict(values))
                own.update({f"{i}_{j}": np.asarray(a)
                            for j, a in enumerate(arrays)})
                continue
            names = next(n for t, n in _KERAS_STATE if isinstance(callback, t))
            saved.append({n: _number(getattr(callback, n)) for n in names})
            weights = getattr(callback, "best_weights", None) or ()
            best.update({f"{i}_{j}": w for j, w in enumerate(weights)})
        return saved, best, own

    def _save_best_weights(
        self,
        epoch: int,
        previous: Mapping[str, Any],
        saved: Sequence[Mapping[str, Any]],
        best: Mapping[str, np.ndarray],
    ) -> str | None:
        """The best-weights file: the previous one unless a best moved."""
        if not best:
            return None
        name = previous.get("best_weights")
        if name is None or previous.get("best_epochs") != [
                s.get("best_epoch") for s in saved]:
            name = self._save_arrays(f"best-{epoch + 1:05d}.npz", best)
        return name

    # `arrays` maps names to NumPy arrays; typed Any because np.savez's stub
    # would also let a `**` mapping fill its `allow_pickle: bool`.
    def _save_arrays(self, name: str,
                     arrays: Mapping[str, Any]) -> str | None:
        if not arrays:
            return None
        atomic_write(self.backup_dir / name, lambda f: np.savez(f, **arrays))
        return name

    def _commit(self, state: dict[str, Any]) -> None:
        # The commit point (json.dumps keeps inf, which Keras uses as "best").
        atomic_write_text(self.backup_dir / STATE_FILE, json.dumps(state))
        self._keep_only(state)

    def _keep_only(self, state: Mapping[str, Any] | None) -> None:
        keep = {STATE_FILE} | set((state or {}).get("files", []))
        for file in self.backup_dir.iterdir():
            if file.name not in keep:
                file.unlink()


def read_backup_info(backup_dir: StrPath) -> dict[str, Any] | None:
    """The `info` of the last committed epoch in `backup_dir`, or None.

    None when nothing is committed there; `{}` for a backup written without
    `info`.
    """
    path = Path(backup_dir) / STATE_FILE
    if not path.exists():
        return None
    return dict(json.loads(path.read_text()).get("info") or {})


def _keeps_state(callback: object) -> bool:
    return (hasattr(callback, "backup_state")
            or any(isinstance(callback, t) for t, _ in _KERAS_STATE))


def _numbered(arrays: Mapping[str, np.ndarray], i: int) -> list[np.ndarray]:
    """The arrays `"{i}_0"`, `"{i}_1"`, ... of callback `i`, in order."""
    count = sum(1 for k in arrays if k.startswith(f"{i}_"))
    return [arrays[f"{i}_{j}"] for j in range(count)]


def _number(value: Any) -> int | float | None:
    """A callback's state value (None, int or float, inf kept) for JSON."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)
