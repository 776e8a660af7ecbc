"""Run-folder files written so that an interrupted run loses nothing.

Every file is written atomically (a temporary file in the same folder, then
`os.replace`), so a run killed at any moment leaves either the previous
complete file or the new complete file under the final name, never a
truncated one; the temporary files a killed run leaves behind are removed
when the run resumes. The callbacks here are the builder's bookkeeping:
Keras's `CSVLogger` duplicates rows when a resumed run repeats an epoch,
`ModelCheckpoint` forgets its best value on resume and writes in place,
`BackupAndRestore` writes its weights and its epoch in two steps and forgets
the state of `EarlyStopping` and `ReduceLROnPlateau`, and `TerminateOnNaN`
lets the bad epoch be logged, checkpointed and backed up.
"""

import csv
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import keras

CHECKPOINT_MEMBER = "regkit_checkpoint.json"


def atomic_write_bytes(path, data):
    """Writes `data` to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    """Writes `obj` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(_plain(obj), indent=2, sort_keys=True))


def atomic_save_model(model, path, extra=None):
    """Saves `model` to a `.keras` file atomically.

    `extra` (a JSON-able mapping) is stored inside the archive as
    `regkit_checkpoint.json`, so it is replaced together with the model.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=".keras"
    )
    os.close(fd)
    try:
        model.save(tmp)
        if extra is not None:
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(CHECKPOINT_MEMBER, json.dumps(_plain(extra)))
        _sync(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _sync(path):
    """Flushes a file another library wrote to disk, with the usual mode."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(path, 0o666 & ~_umask())


def remove_temp_files(folder, names):
    """Removes the temporary files a killed atomic write of `names` left.

    Only hidden files named like this module's temporary files (`.NAME.*` or
    `.STEM.*`) are removed; returns their paths.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for name in names:
        prefixes = {f".{name}.", f".{Path(name).stem}."}
        for file in folder.iterdir():
            if file.is_file() and file.name.startswith(tuple(prefixes)):
                file.unlink()
                removed.append(file)
    return removed


def _plain(value):
    """Converts NumPy scalars and arrays to plain Python values for JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_history_csv(path):
    """Reads a `history.csv` into a list of dicts (floats, `epoch` as int)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            parsed = {}
            for key, value in row.items():
                if value in ("", None):
                    continue
                parsed[key] = int(value) if key == "epoch" else float(value)
            rows.append(parsed)
    return rows


class HistoryRecorder(keras.callbacks.Callback):
    """Keeps `history.csv` with every epoch exactly once, rewritten atomically.

    When a resumed run repeats an epoch, the rows from that epoch on are
    replaced, so the file never holds an epoch twice. The learning rate in
    effect is recorded as `learning_rate`.

    Args:
        path: the CSV file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.rows = []

    def on_train_begin(self, logs=None):
        remove_temp_files(self.path.parent, [self.path.name])
        self.rows = read_history_csv(self.path)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": int(epoch)}
        for key, value in (logs or {}).items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                continue
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "learning_rate" not in row:
            try:
                row["learning_rate"] = float(
                    keras.ops.convert_to_numpy(optimizer.learning_rate)
                )
            except (TypeError, ValueError):
                pass
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        keys = ["epoch"]
        for r in self.rows:
            keys.extend(k for k in r if k not in keys)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buffer.getvalue())

    def history(self):
        """The recorded epochs as a Keras-History-style dict of lists."""
        keys = [k for k in (self.rows[0] if self.rows else {}) if k != "epoch"]
        for r in self.rows:
            keys.extend(k for k in r if k not in keys and k != "epoch")
        return {k: [r.get(k, float("nan")) for r in self.rows] for k in keys}


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the best model to `.keras` atomically and remembers its score.

    The best value and epoch are stored inside the `.keras` archive, so they
    are replaced in the same rename as the model, and a resumed run never
    overwrites a better model with a worse one. A copy is written beside it
    (`best_model.best.json`) for people to read. Epochs whose training loss
    is not finite are never saved.

    Args:
        path: the `.keras` file.
        monitor: the log key to watch. Defaults to `"val_accuracy"`.
        mode: `"max"` or `"min"`. Defaults to `"max"`.
    """

    def __init__(self, path, monitor="val_accuracy", mode="max"):
        super().__init__()
        self.path = Path(path)
        self.state_path = self.path.with_suffix(".best.json")
        self.monitor = monitor
        self.mode = mode
        self.best = None
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        remove_temp_files(self.path.parent,
                          [self.path.name, self.state_path.name])
        self.best, self.best_epoch = None, None
        state = None
        if self.path.exists():
            try:
                with zipfile.ZipFile(self.path) as archive:
                    state = json.loads(archive.read(CHECKPOINT_MEMBER))
            except (KeyError, zipfile.BadZipFile):
                if self.state_path.exists():  # a file from an older version
                    state = json.loads(self.state_path.read_text())
        if state and state.get("monitor", self.monitor) == self.monitor:
            self.best, self.best_epoch = state["best"], state["epoch"]

    def _improved(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(float(logs.get("loss", 0.0))):
            return
        value = float(value)
        if not math.isfinite(value) or not self._improved(value):
            return
        state = {"monitor": self.monitor, "best": value, "epoch": int(epoch)}
        atomic_save_model(self.model, self.path, extra=state)
        self.best, self.best_epoch = value, int(epoch)
        atomic_write_json(self.state_path, state)
