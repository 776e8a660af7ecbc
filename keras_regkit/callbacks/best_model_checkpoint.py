"""BestModelCheckpoint: the best model so far, saved with its score."""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from keras_regkit._atomic import atomic_path
from keras_regkit._atomic import atomic_write_json
from keras_regkit._atomic import json_ready
from keras_regkit._atomic import remove_temp_files
from keras_regkit._typing import Logs, StrPath
from keras_regkit._validation import invalid
from keras_regkit.callbacks._monitor import Monitor

# The archive member that holds the checkpoint's score.
CHECKPOINT_MEMBER = "regkit_checkpoint.json"


def read_checkpoint_state(path: StrPath) -> dict[str, Any] | None:
    """The score stored in a `BestModelCheckpoint` file, or `None`.

    Args:
        path: the `.keras` file.

    Returns:
        `{"monitor": ..., "best": ..., "epoch": ...}`, or `None` when the
        archive holds no score.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(CHECKPOINT_MEMBER))
    except (KeyError, zipfile.BadZipFile):
        return None


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the best model to a `.keras` file atomically, with its score.

    Like `keras.callbacks.ModelCheckpoint(save_best_only=True)`, with two
    differences that matter when a run is interrupted and resumed:

    - the file is written to a temporary file and renamed, so a process
      killed mid-save leaves the previous best model whole;
    - the best value and its epoch are stored inside the `.keras` archive
      (member `regkit_checkpoint.json`), replaced in the same rename as the
      model, and read back at `on_train_begin`, so a resumed run never
      overwrites a better model with a worse one (`ModelCheckpoint` starts
      again from no best and saves the first epoch it sees).

    A readable copy of the score is written beside the model
    (`<stem>.best.json`). Epochs whose training loss or monitored value is
    not finite are never saved.

    Args:
        path: the `.keras` file. Its folder is created if needed.
        monitor: the log key to watch. Defaults to `"val_accuracy"`.
        mode: `"max"`, `"min"` or `"auto"` (from the name of `monitor`).
            Defaults to `"max"`.

    Example:

    ```python
    checkpoint = BestModelCheckpoint("run/best_model.keras")
    model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[checkpoint])
    checkpoint.best, checkpoint.best_epoch  # e.g. (0.71, 8)
    best = keras.saving.load_model("run/best_model.keras")
    ```
    """

    def __init__(self, path: StrPath, monitor: str = "val_accuracy",
                 mode: str = "max") -> None:
        super().__init__()
        if not isinstance(path, (str, os.PathLike)):
            raise invalid("path", path, "a file path")
        if not str(path).endswith(".keras"):
            raise invalid("path", path, "a file path ending in `.keras`")
        self._monitor = Monitor(monitor, mode)
        self.path = Path(path)
        self.state_path = self.path.with_suffix(".best.json")
        self.monitor = monitor
        self.mode = self._monitor.mode
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        remove_temp_files(self.path.parent,
                          [self.path.name, self.state_path.name])
        self.best, self.best_epoch = None, None
        state = self._saved_state()
        if state and state.get("monitor", self.monitor) == self.monitor:
            self.best, self.best_epoch = state["best"], state["epoch"]

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = self._finite_value(logs or {})
        if value is not None and self._monitor.improved(value, self.best):
            self._save(epoch, value)

    def _saved_state(self) -> dict[str, Any] | None:
        """The score of the file already there, from the archive if any."""
        if not self.path.exists():
            return None
        state = read_checkpoint_state(self.path)
        if state is None and self.state_path.exists():  # an older file
            state = json.loads(self.state_path.read_text())
        return state

    def _finite_value(self, logs: Mapping[str, Any]) -> float | None:
        """The monitored value, or `None` if missing or not finite."""
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(float(logs.get("loss", 0.0))):
            return None
        value = float(value)
        return value if math.isfinite(value) else None

    def _save(self, epoch: int, value: float) -> None:
        state = {"monitor": self.monitor, "best": value, "epoch": int(epoch)}
        with atomic_path(self.path, suffix=".keras") as tmp:
            self.model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(CHECKPOINT_MEMBER,
                                 json.dumps(json_ready(state)))
        self.best, self.best_epoch = value, int(epoch)
        atomic_write_json(self.state_path, state)
