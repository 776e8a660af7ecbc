"""RunFolder: the files of one training run, their names and commit order.

A run folder holds `config.yaml`, `history.csv`, `best_model.keras` (with
`best_model.best.json`), `final_model.keras`, `training_curves.png`, the
overfitting detector's state, TensorBoard logs under `logs/` and, once the
run has finished, `summary.json`; while it runs, `backup/` lets an
interrupted run resume. Every file is written atomically
(`keras_regkit._atomic`), and in an order that makes a killed run resumable:

- within an epoch, the records (history, best model, detector state) are
  written first and the backup commits last (`RunFolder.commit_order`), so
  a run killed in between repeats the epoch and the records drop their copy
  of it;
- at the end, the final model and the plot are written, then
  `summary.json`, the mark of a finished run, then the backup goes.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keras_regkit._atomic import atomic_path
from keras_regkit._atomic import atomic_write_json
from keras_regkit._atomic import remove_temp_files
from keras_regkit._typing import StrPath
from keras_regkit._validation import check_int
from keras_regkit.callbacks.best_model_checkpoint import BestModelCheckpoint
from keras_regkit.callbacks.history_recorder import HistoryRecorder
from keras_regkit.callbacks.history_recorder import read_history_csv
from keras_regkit.callbacks.nan_guard import NaNGuard
from keras_regkit.callbacks.run_backup import RunBackup
from keras_regkit.callbacks.run_backup import read_backup_info
from keras_regkit.callbacks.run_backup import remove_backup

if TYPE_CHECKING:
    import keras

    from keras_regkit.models.presets import CapacityPreset

CONFIG = "config.yaml"
HISTORY = "history.csv"
BEST_MODEL = "best_model.keras"
BEST_SCORE = "best_model.best.json"
FINAL_MODEL = "final_model.keras"
SUMMARY = "summary.json"
CURVES = "training_curves.png"
DETECTOR_STATE = "overfitting_detector.json"
BACKUP = "backup"
LOGS = "logs"

# The run's own files (not the backup or the logs).
RUN_FILES = (HISTORY, SUMMARY, BEST_MODEL, BEST_SCORE, FINAL_MODEL, CONFIG,
             CURVES, DETECTOR_STATE)


def tensorboard_available() -> bool:
    """Whether TensorBoard logs can be written; warns when not.

    Keras's `TensorBoard` callback writes through `tf.summary` on every
    backend, so it needs TensorFlow as well as the `tensorboard` package.
    """
    for package in ("tensorboard", "tensorflow"):
        try:
            # By name: the package ships no type information to check.
            importlib.import_module(package)
        except ImportError:
            warnings.warn(f"The `{package}` package is not installed: no "
                          "TensorBoard logs are written (pip install "
                          f"{package}).", stacklevel=3)
            return False
    return True


def _file(name: str) -> property:
    """A read-only property: the path of `name` inside the run folder."""
    return property(lambda self: self.path / name,
                    doc=f"The path of `{name}` in the run folder.")


class RunFolder:
    """The folder of one training run: its file names, callbacks and order.

    Args:
        path: the run folder (created when the run starts).
        workers: the number of workers training the run (see
            `training.runs.workers`), committed with each epoch; a run is
            resumed only by as many workers. Defaults to `1`.

    Example:

    ```python
    folder = RunFolder("runs/small")
    folder.prepare(preset, overwrite=False)    # refuse, resume or start
    callbacks = RunFolder.commit_order(
        [NaNGuard(), *folder.callbacks("val_accuracy"), *mine])
    folder.write_config(preset)
    history = model.fit(..., callbacks=callbacks)
    folder.finish(model, history, wall_time_s, info={"seed": 0})
    ```
    """

    def __init__(self, path: StrPath, workers: int = 1) -> None:
        self.path = Path(path)
        self.workers = check_int("workers", workers, 1)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r}, workers={self.workers})"

    # File names: `folder.history_csv` is `folder.path / "history.csv"`.
    config = _file(CONFIG)
    history_csv = _file(HISTORY)
    best_model = _file(BEST_MODEL)
    final_model = _file(FINAL_MODEL)
    summary = _file(SUMMARY)
    training_curves = _file(CURVES)
    detector_state = _file(DETECTOR_STATE)
    backup_dir = _file(BACKUP)
    log_dir = _file(LOGS)

    def existing_files(self) -> list[str]:
        """The names of `RUN_FILES` present in the folder."""
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def is_finished(self) -> bool:
        """Whether the folder holds a finished run (its `summary.json`)."""
        return self.summary.exists()

    # Before the run.

    def prepare(self, preset: CapacityPreset, overwrite: bool = False) -> None:
        """Checks the folder before training and cleans killed writes.

        A folder with `summary.json` holds a finished run: refused unless
        `overwrite` (then its files and backup are deleted). Any other
        folder with run files holds an interrupted run, which is resumed;
        its `config.yaml` must match `preset`. Temporary files that killed
        writes left are removed.

        Raises:
            FileExistsError: a finished run without `overwrite`.
            ValueError: an interrupted run with another config, or
                committed by another number of workers.
        """
        existing = self.existing_files()
        if SUMMARY in existing:
            self._replace_finished(existing, overwrite)
        else:
            self._check_config(preset)
            self._check_workers()
        remove_temp_files(self.path, RUN_FILES)

    def _check_workers(self) -> None:
        info = read_backup_info(self.backup_dir)
        if info is None:
            return
        committed = int(info.get("workers", 1))
        if committed != self.workers:
            raise ValueError(
                f"Cannot resume the run in {self.path} with {self.workers} "
                f"worker(s): its epochs were committed by {committed}, and "
                "another number of workers would see other shards of the "
                f"data. Start the job again with {committed} worker(s) "
                "(the same TF_CONFIG cluster), or use another run_dir "
                "(--out). The folder is left as it is.")

    def _replace_finished(self, existing: Sequence[str],
                          overwrite: bool) -> None:
        if not overwrite:
            raise FileExistsError(
                f"Run folder {self.path} already holds a finished run "
                f"({', '.join(existing)}). Choose another run_dir (--out) or "
                "pass overwrite=True (--overwrite) to replace it.")
        for name in existing:
            (self.path / name).unlink()
        remove_backup(self.backup_dir)

    def _check_config(self, preset: CapacityPreset) -> None:
        if not self.config.exists():
            return
        saved = type(preset).from_yaml(self.config).to_dict()
        ours = preset.to_dict()
        changed = sorted(k for k in ours if saved.get(k) != ours[k])
        if changed:
            raise ValueError(
                f"Cannot resume the run in {self.path} with a different "
                "config: " + ", ".join(
                    f"{k}={ours[k]!r} (run has {saved.get(k)!r})"
                    for k in changed)
                + ". Use the same flags, or another run_dir (--out).")

    def write_config(self, preset: CapacityPreset) -> Path:
        """Writes the resolved `preset` to `config.yaml` (atomically)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return preset.to_yaml(self.config)

    # During the run.

    def callbacks(
        self, monitor: str = "val_accuracy",
        stateful: Sequence[keras.callbacks.Callback] = (),
    ) -> list[keras.callbacks.Callback]:
        """The folder's record and backup callbacks, backup last.

        Args:
            monitor: the best model's metric. Defaults to `"val_accuracy"`.
            stateful: callbacks whose state the backup commits (see
                `RunBackup`). Defaults to `()`.

        Returns:
            `[BestModelCheckpoint, HistoryRecorder, RunBackup]`.
        """
        return [BestModelCheckpoint(self.best_model, monitor=monitor),
                HistoryRecorder(self.history_csv),
                RunBackup(self.backup_dir, stateful,
                          info={"workers": self.workers})]

    @staticmethod
    def commit_order(
        callbacks: Iterable[keras.callbacks.Callback],
    ) -> list[keras.callbacks.Callback]:
        """`callbacks` in the order a run folder needs at each epoch end.

        `NaNGuard`s first (a non-finite epoch stops before anything records
        it), every `RunBackup` last (it commits the epoch once the other
        records are written), the others in their given order.
        """
        callbacks = list(callbacks)
        first = [c for c in callbacks if isinstance(c, NaNGuard)]
        last = [c for c in callbacks if isinstance(c, RunBackup)]
        middle = [c for c in callbacks if c not in first and c not in last]
        return first + middle + last

    # After the run.

    def read_history(self) -> dict[str, list[float]]:
        """`history.csv` as a Keras-History-style dict of lists."""
        rows = read_history_csv(self.history_csv)
        keys: list[str] = []
        for row in rows:
            keys.extend(k for k in row if k not in keys and k != "epoch")
        return {k: [r.get(k, float("nan")) for r in rows] for k in keys}

    def finish(
        self, model: keras.Model, history: keras.callbacks.History,
        wall_time_s: float, n_images: int | None = None,
        info: Mapping[str, Any] | None = None,
        plot: Callable[[dict[str, list[float]], Path], object] | None = None,
    ) -> dict[str, Any]:
        """Writes a finished run's files; `summary.json` last marks it done.

        `history.history` receives every epoch of the folder (a resumed
        run's too). Then the final model, the training curves (`plot`,
        failures only warn), `summary.json` and, last, the backup goes: a
        run killed before `summary.json` resumes and finishes again.

        Args:
            model: the trained model, saved as `final_model.keras`.
            history: the `History` that `fit` returned.
            wall_time_s: the seconds `fit` took.
            n_images: training images per epoch, for `images_per_s`, or
                `None` when unknown. Defaults to `None`.
            info: more entries for `summary.json` (preset, seed). Defaults
                to `None`.
            plot: `plot(history_dict, path)` writing the training-curve
                PNG, or `None` for none. Defaults to `None`.

        Returns:
            The summary written.
        """
        full = self.read_history()
        if full:
            history.history = full
        epochs_run = len(history.epoch)
        summary = dict(info or {})
        summary.update(run_summary(full, epochs_run))
        summary["wall_time_s"] = wall_time_s
        summary["images_per_s"] = (n_images * epochs_run / wall_time_s
                                   if n_images and wall_time_s > 0 else None)
        with atomic_path(self.final_model, suffix=".keras") as tmp:
            model.save(tmp)
        if plot is not None:
            try:
                plot(full, self.training_curves)
            except Exception as exc:  # plots never cost the run its files
                warnings.warn(f"Could not write training plots: {exc}",
                              stacklevel=2)
        # summary.json marks the run finished: written last, then the backup
        # goes (a run killed before this line resumes and finishes again).
        atomic_write_json(self.summary, summary)
        remove_backup(self.backup_dir)
        return summary


def run_summary(history: Mapping[str, Sequence[float]],
                epochs_this_run: int) -> dict[str, Any]:
    """The epochs and metrics part of `summary.json`.

    Args:
        history: a dict of lists (every epoch of the run folder).
        epochs_this_run: the epochs the last `fit` ran.

    Returns:
        `epochs_recorded`, `epochs_this_run`, `final` (each metric's last
        value) and `best_val_accuracy` / `best_val_loss` with their epochs.
    """
    summary: dict[str, Any] = {
        "epochs_recorded": len(next(iter(history.values()), [])),
        "epochs_this_run": epochs_this_run,
        "final": {k: v[-1] for k, v in history.items() if v},
    }
    for key, better in (("val_accuracy", max), ("val_loss", min)):
        if history.get(key):
            value = better(history[key])
            summary["best_" + key] = value
            summary["best_" + key + "_epoch"] = history[key].index(value)
    return summary

