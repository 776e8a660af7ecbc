"""HistoryRecorder: a CSV history that holds every epoch exactly once."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from keras_regkit._atomic import atomic_write_text
from keras_regkit._atomic import remove_temp_files
from keras_regkit._typing import Logs, StrPath
from keras_regkit._validation import invalid


def read_history_csv(path: StrPath) -> list[dict[str, float]]:
    """Reads a history CSV into a list of dicts, one per epoch.

    Args:
        path: the CSV file (`HistoryRecorder`'s or `CSVLogger`'s).

    Returns:
        The rows in file order: `epoch` as an int, every other column as a
        float, empty cells left out. `[]` when the file does not exist.
    """
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, float]] = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            parsed: dict[str, float] = {}
            for key, value in row.items():
                if value in ("", None):
                    continue
                parsed[key] = int(value) if key == "epoch" else float(value)
            rows.append(parsed)
    return rows


class HistoryRecorder(keras.callbacks.Callback):
    """Keeps a CSV history with every epoch exactly once, written atomically.

    At each epoch end the whole file is rewritten through a temporary file
    and a rename, so a process killed at any moment leaves a complete file.
    At `on_train_begin` the rows already in the file are read back: a
    resumed `fit` (for example through `RunBackup`) appends to them, and
    when it repeats an epoch the rows from that epoch on are replaced, so
    the file never holds an epoch twice (Keras's `CSVLogger` appends a
    second copy). Every numeric log is a column, and the learning rate in
    effect is recorded as `learning_rate`.

    Put it before `RunBackup` in the callback list, so that an epoch is in
    the file before the backup that a resumed run starts from commits it.

    Args:
        path: the CSV file. Its folder is created if needed.

    Example:

    ```python
    recorder = HistoryRecorder("run/history.csv")
    model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[recorder])
    recorder.history()["val_loss"]  # one value per epoch, resumed ones too
    ```
    """

    def __init__(self, path: StrPath) -> None:
        super().__init__()
        if not isinstance(path, (str, os.PathLike)):
            raise invalid("path", path, "a file path")
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        remove_temp_files(self.path.parent, [self.path.name])
        self.rows = read_history_csv(self.path)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        row = self._row(epoch, logs or {})
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        atomic_write_text(self.path, self._csv_text())

    def history(self) -> dict[str, list[float]]:
        """The recorded epochs as a Keras-History-style dict of lists.

        A key missing from some epochs is NaN there.
        """
        keys: list[str] = []
        for r in self.rows:
            keys.extend(k for k in r if k not in keys and k != "epoch")
        return {k: [r.get(k, float("nan")) for r in self.rows] for k in keys}

    def _row(self, epoch: int, logs: Mapping[str, Any]) -> dict[str, float]:
        """The numeric logs of one epoch, with the learning rate in effect."""
        row: dict[str, float] = {"epoch": int(epoch)}
        for key, value in logs.items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                continue
        if "learning_rate" not in row:
            rate = self._learning_rate()
            if rate is not None:
                row["learning_rate"] = rate
        return row

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        try:
            return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except (TypeError, ValueError):
            return None

    def _csv_text(self) -> str:
        keys = ["epoch"]
        for r in self.rows:
            keys.extend(k for k in r if k not in keys)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()
