"""OverfittingDetector: declares the epoch where overfitting started."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras

from keras_regkit._atomic import atomic_write_text
from keras_regkit._registry import register
from keras_regkit._typing import Logs, StrPath
from keras_regkit._validation import check_choice
from keras_regkit._validation import check_float
from keras_regkit._validation import check_int
from keras_regkit._validation import check_non_negative
from keras_regkit._validation import invalid
from keras_regkit.callbacks._monitor import Monitor

if TYPE_CHECKING:
    from typing_extensions import Self

# `action`: "warn", "stop", or a callable `(detector, epoch, logs)`.
Action = str | Callable[["OverfittingDetector", int, Logs], object]
_ACCURACY_NAMES = ("accuracy", "acc", "sparse_categorical_accuracy",
                   "categorical_accuracy", "binary_accuracy")


def _as_float(value: Any) -> float | None:
    """`float(value)`, or None for a missing or non-scalar value."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def find_accuracy_key(logs: Mapping[str, Any],
                      name: str | None = None) -> str | None:
    """Returns the train accuracy key of `logs` that has a `val_` twin.

    `name` (a train-side name such as `"top1"`) wins when given; otherwise
    the usual Keras names are tried, then any key ending in `accuracy` or
    `acc` that is not a top-k metric.
    """
    keys = set(logs)
    if name is not None:
        return name if {name, "val_" + name} <= keys else None
    for key in _ACCURACY_NAMES:
        if {key, "val_" + key} <= keys:
            return key
    for key in sorted(keys):
        if key.startswith("val_") or "top" in key or "val_" + key not in keys:
            continue
        if key.endswith("accuracy") or key.endswith("acc"):
            return key
    return None


def overfitting_onset(
    records: Iterable[Mapping[str, Any]], patience: int,
) -> tuple[int | None, int | None]:
    """Returns `(onset, fired)` epochs of the first `patience`-long run.

    `records` are epoch records in order, each with a boolean `"signal"`.
    A run is a sequence of consecutive epochs whose signal holds; the first
    run that reaches `patience` epochs declares overfitting at its last
    epoch (`fired`) with `onset` its first epoch. Returns `(None, None)`
    when no run is long enough.
    """
    start, previous = None, None
    for record in records:
        epoch = record["epoch"]
        contiguous = previous is not None and epoch == previous + 1
        if record["signal"]:
            if start is None or not contiguous:
                start = epoch
            if epoch - start + 1 >= patience:
                return start, epoch
        else:
            start = None
        previous = epoch
    return None, None


def epoch_signals(
    record: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    threshold: float,
    acc_threshold: float | None,
    min_delta: float,
) -> dict[str, Any]:
    """Computes the gaps and the overfitting signal of one epoch record.

    `record` holds `loss`, `val_loss`, `accuracy`, `val_accuracy` (the
    accuracies may be None); `history` the earlier records, oldest first.
    Returns `loss_gap` (`(val_loss - loss) / |loss|`), `acc_gap` (train
    minus validation accuracy, or None), `improved` (validation loss below
    its best by more than `min_delta`; True on the first epoch), `rising`
    (validation loss above the previous epoch's by more than `min_delta`
    while the training loss fell) and `signal` (`rising`, or a gap over its
    threshold on an epoch that did not improve).
    """
    loss, val_loss = record["loss"], record["val_loss"]
    loss_gap = (val_loss - loss) / max(abs(loss), 1e-12)
    acc_gap = None
    if record["accuracy"] is not None and record["val_accuracy"] is not None:
        acc_gap = record["accuracy"] - record["val_accuracy"]
    monitor = Monitor("val_loss", "min", min_delta)
    best = monitor.best_of([r["val_loss"] for r in history])
    improved = monitor.improved(val_loss, best)
    rising = False
    if history and history[-1]["epoch"] == record["epoch"] - 1:
        previous = history[-1]
        rising = (monitor.worsened(val_loss, previous["val_loss"])
                  and loss < previous["loss"])
    gap = loss_gap > threshold
    if acc_threshold is not None and acc_gap is not None:
        gap = gap or acc_gap > acc_threshold
    return {"loss_gap": loss_gap, "acc_gap": acc_gap,
            "improved": bool(improved), "rising": bool(rising),
            "signal": bool(rising or (gap and not improved))}


@register
class OverfittingDetector(keras.callbacks.Callback):
    """Detects overfitting from the train/validation gap and acts on it.

    At each epoch end it reads the training and validation loss
    (and accuracy, under whatever name the model compiled it). An epoch
    signals when the relative loss gap `(val_loss - loss) / loss` exceeds
    `threshold` (the reference recipe's `val_loss > loss * (1 + threshold)`) or the
    accuracy gap exceeds `acc_threshold` while the validation loss did not
    improve on its best by more than `min_delta` (a gap while validation
    still improves is the ordinary generalization gap, not overfitting),
    and also when the validation loss rose by more than `min_delta` while
    the training loss fell. Overfitting is declared after `patience`
    consecutive signal epochs; `onset_epoch` is the first of them (0-based,
    like Keras) and the action runs once. Every epoch adds `overfit_gap` and
    `overfitting` (0/1, latched once declared) to the logs, so they reach
    History, CSVLogger and TensorBoard placed after it in the callback list.

    Without validation metrics it warns once and changes nothing; it never
    raises inside `fit` (a callable `action` runs unguarded). Its state is a
    list of records: with `state_path` it is written atomically after each
    epoch and reloaded at `on_train_begin`, so a run resumed through
    `keras.callbacks.BackupAndRestore` keeps the epochs done before the
    interruption (put the detector before BackupAndRestore in the list).
    Records of epochs that a fit runs again are replaced, never duplicated.

    Args:
        threshold: non-negative relative loss gap. Defaults to `0.1`.
        patience: consecutive signal epochs needed. Defaults to `2`.
        min_delta: non-negative change of the validation loss below which it
            neither improves nor rises. Defaults to `0.0`.
        monitor: the loss key; its validation twin is `"val_" + monitor`.
            Defaults to `"loss"`.
        acc_threshold: float in [0, 1], train-minus-validation accuracy gap
            that also signals, or None. Defaults to `None`.
        action: `"warn"`, `"stop"` (sets `model.stop_training`) or a
            callable `(detector, epoch, logs)`. Defaults to `"warn"`.
        start_epoch: epochs before this one are recorded but never signal.
            Defaults to `0`.
        verbose: 0 silent, 1 a line when overfitting is declared (the
            `"warn"` action warns instead), 2 also one line per epoch.
            Defaults to `1`.
        acc_metric: train-side accuracy key, or None to find it. Defaults to
            `None`.
        state_path: JSON file that keeps the records across interrupted
            runs, or None. Defaults to `None`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", "sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])
    >>> x, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 3
    >>> detector = OverfittingDetector(threshold=0.15, action="stop")
    >>> _ = model.fit(x, y, validation_split=0.2, epochs=2, verbose=0,
    ...               callbacks=[detector])
    >>> print(detector.summary())
    OverfittingDetector report
    ...

    References:
        - Prechelt, "Early Stopping - But When?", Neural Networks: Tricks of
          the Trade, 1998 (generalization-loss and successive-rise criteria).
    """

    def __init__(
        self,
        threshold: float = 0.1,
        patience: int = 2,
        min_delta: float = 0.0,
        monitor: str = "loss",
        acc_threshold: float | None = None,
        action: Action = "warn",
        start_epoch: int = 0,
        verbose: int = 1,
        acc_metric: str | None = None,
        state_path: StrPath | None = None,
    ) -> None:
        super().__init__()
        self.threshold = check_non_negative("threshold", threshold)
        self.patience = check_int("patience", patience, 1)
        self.min_delta = check_non_negative("min_delta", min_delta)
        if not isinstance(monitor, str) or not monitor:
            raise invalid("monitor", monitor, "a non-empty metric name")
        self.monitor = monitor[4:] if monitor.startswith("val_") else monitor
        self.acc_threshold = acc_threshold if acc_threshold is None else (
            check_float("acc_threshold", acc_threshold, 0.0, 1.0, True, True))
        if not callable(action):
            check_choice("action", action, ("warn", "stop"))
        self.action = action
        self.start_epoch = check_int("start_epoch", start_epoch, 0)
        self.verbose = check_int("verbose", verbose, 0, 2)
        if acc_metric is not None and not (isinstance(acc_metric, str)
                                           and acc_metric):
            raise invalid("acc_metric", acc_metric, "None or a metric name")
        self.acc_metric = acc_metric
        if state_path is not None and not isinstance(
                state_path, (str, os.PathLike)):
            raise invalid("state_path", state_path, "None or a file path")
        self.state_path = None if state_path is None else os.fspath(state_path)
        self.records: list[dict[str, Any]] = []
        self.onset_epoch: int | None = None
        self.fired_epoch: int | None = None
        self._warned_missing = False
        self._awaiting_first_epoch = True

    def get_config(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold, "patience": self.patience,
            "min_delta": self.min_delta, "monitor": self.monitor,
            "acc_threshold": self.acc_threshold, "action": self.action,
            "start_epoch": self.start_epoch, "verbose": self.verbose,
            "acc_metric": self.acc_metric, "state_path": self.state_path,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def _replay(self) -> None:
        self.onset_epoch, self.fired_epoch = overfitting_onset(
            self.records, self.patience)

    def _load_state(self) -> None:
        if self.state_path is None or not os.path.exists(self.state_path):
            return
        try:
            with open(self.state_path) as f:
                records = json.load(f)["records"]
            self.records = sorted(records, key=lambda r: r["epoch"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            warnings.warn(f"OverfittingDetector could not read its state "
                          f"from {self.state_path!r} ({error}); starting "
                          "with no records.", stacklevel=2)
            self.records = []

    def _save_state(self) -> None:
        if self.state_path is None:
            return
        try:
            atomic_write_text(self.state_path, json.dumps(
                {"version": 1, "records": self.records}))
        except OSError as error:
            warnings.warn(f"OverfittingDetector could not write its state "
                          f"to {self.state_path!r}: {error}", stacklevel=2)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._warned_missing = False
        self._awaiting_first_epoch = True
        self._load_state()

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self._awaiting_first_epoch:
            # A fresh fit starts at 0 and drops everything; a resumed one
            # keeps the epochs before it and replaces any it runs again.
            self._awaiting_first_epoch = False
            self.records = [r for r in self.records if r["epoch"] < epoch]
            self._replay()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is None:
            return
        loss = _as_float(logs.get(self.monitor))
        val_loss = _as_float(logs.get("val_" + self.monitor))
        if loss is None or val_loss is None:
            if not self._warned_missing:
                self._warned_missing = True
                warnings.warn(
                    f"OverfittingDetector needs numeric `{self.monitor}` and "
                    f"`val_{self.monitor}` in the epoch logs; skipping epochs "
                    f"without them (available: {sorted(logs)}). Pass "
                    "validation data to `fit` to enable it.", stacklevel=2)
            return
        acc_key = find_accuracy_key(logs, self.acc_metric)
        record: dict[str, Any] = {
            "epoch": int(epoch), "loss": loss, "val_loss": val_loss,
            "accuracy": _as_float(logs.get(acc_key)) if acc_key else None,
            "val_accuracy": (_as_float(logs.get("val_" + acc_key))
                             if acc_key else None),
        }
        history = [r for r in self.records if r["epoch"] < epoch]
        record.update(epoch_signals(record, history, self.threshold,
                                    self.acc_threshold, self.min_delta))
        if epoch < self.start_epoch:
            record["signal"] = False
        already = self.onset_epoch is not None
        self.records = history + [record]
        self._replay()
        record["overfitting"] = self.onset_epoch is not None
        self._save_state()
        logs["overfit_gap"] = record["loss_gap"]
        logs["overfitting"] = int(record["overfitting"])
        if self.verbose >= 2:
            print(f"OverfittingDetector epoch {epoch}: loss gap "
                  f"{record['loss_gap']:+.1%}, signal {record['signal']}")
        if record["overfitting"] and not already:
            self._act(epoch, logs, record)

    def _act(self, epoch: int, logs: Logs,
             record: Mapping[str, Any]) -> None:
        message = self._message(record)
        if callable(self.action):
            if self.verbose:
                print(message)
            self.action(self, epoch, logs)
        elif self.action == "stop":
            self.model.stop_training = True
            if self.verbose:
                print(f"{message} Stopping training.")
        else:
            warnings.warn(message, stacklevel=2)

    def _message(self, record: Mapping[str, Any]) -> str:
        text = (
            f"Overfitting detected at epoch {record['epoch']} (onset epoch "
            f"{self.onset_epoch}, 0-based; {self.patience} consecutive "
            f"signal epochs): {self.monitor}={record['loss']:.4f}, "
            f"val_{self.monitor}={record['val_loss']:.4f}, relative gap "
            f"{record['loss_gap']:+.1%} (threshold {self.threshold:.1%})")
        if record["acc_gap"] is not None:
            text += (f", accuracy {record['accuracy']:.4f} vs val "
                     f"{record['val_accuracy']:.4f} (gap "
                     f"{record['acc_gap']:+.4f})")
        return text + "."

    def summary(self) -> str:
        """Returns a readable report of the records and the verdict."""
        if not self.records:
            return ("OverfittingDetector report\n  no epoch with validation "
                    "metrics was recorded.")
        verdict = (f"no overfitting detected over {len(self.records)} epochs."
                   if self.onset_epoch is None else
                   f"overfitting declared at epoch {self.fired_epoch}; onset "
                   f"epoch {self.onset_epoch} (0-based).")
        lines = ["OverfittingDetector report", "  " + verdict]
        lines.append("  epoch      loss  val_loss  loss_gap   acc_gap  "
                     "signal  overfitting")
        for r in self.records:
            acc = ("       -" if r["acc_gap"] is None
                   else f"{r['acc_gap']:+8.4f}")
            lines.append(
                f"  {r['epoch']:5d}  {r['loss']:8.4f}  {r['val_loss']:8.4f}  "
                f"{r['loss_gap']:+8.1%}  {acc}  {str(r['signal']):>6}  "
                f"{int(r['overfitting']):11d}")
        return "\n".join(lines)
