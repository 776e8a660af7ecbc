"""NaNGuard: stops training at the first non-finite loss, unsaved."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import keras

from keras_regkit._typing import Logs


class NaNGuard(keras.callbacks.TerminateOnNaN):
    """Stops training at the first NaN or inf loss, before it reaches disk.

    Keras's `TerminateOnNaN` lets the bad epoch end: the callbacks after it
    then log, checkpoint and back up NaN weights. This guard raises
    `FloatingPointError` from the batch whose training loss is not finite
    (and, for a non-finite validation loss, at the epoch end before the
    callbacks after it see the epoch), so files written by those callbacks
    keep the last good epoch. The message names the key, the value, the
    epoch and batch (1-based) and what to try.

    Put it first in the callback list.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[NaNGuard(), HistoryRecorder(path)])
    # FloatingPointError: Training stopped: `loss` became nan at epoch 3,
    # batch 17 (1-based). ...
    ```
    """

    def __init__(self) -> None:
        super().__init__(raise_error=True)
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int,
                           logs: Logs | None = None) -> None:
        self._check(logs, ("loss",), f", batch {batch + 1}")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self._check(logs, ("loss", "val_loss"), "")

    def _check(self, logs: Logs | None, keys: Iterable[str],
               where: str) -> None:
        for key in keys:
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                raise FloatingPointError(self._message(key, value, where))

    def _message(self, key: str, value: Any, where: str) -> str:
        return (
            f"Training stopped: `{key}` became {float(value)} at epoch "
            f"{self.epoch + 1}{where} (1-based). Nothing from this epoch was "
            "saved: a run folder keeps the last good epoch (history, best "
            "model, backup). Try a lower learning rate (e.g. half), check the "
            "data for NaN or inf values and labels out of range, or clip "
            "gradients (optimizer `clipnorm=1.0`).")
