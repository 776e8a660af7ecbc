"""Runs `regkit train` in a subprocess, with hooks a test uses to kill it.

Usage: python tests/_drivers/train_run.py CONFIG_YAML RUN_DIR REPORT_JSON

The run is `regkit train --config CONFIG_YAML --out RUN_DIR` on the embedded
CIFAR-10 sample. `REGKIT_DRIVER_HOOK` chooses where the process stops and
waits to be killed (it writes the file `REGKIT_DRIVER_MARKER`, then sleeps):

- `batch:E:B`: at the end of batch B of epoch E (0-based);
- `best_save:N`: halfway through the N-th (1-based) best-model save, after
  writing half a file where the save was going;
- `backup_save:N`: halfway through the N-th weights backup (the same);
- `nan:E:B`: not a pause: from batch B of epoch E on, the loss is NaN.

With no hook the run completes. REPORT_JSON then receives the optimizer's
final step count and the epochs this process ran.
"""

import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

from keras_regkit import cli
from keras_regkit.builder import ProductionModelBuilder


def _pause():
    Path(os.environ["REGKIT_DRIVER_MARKER"]).write_text(str(os.getpid()))
    time.sleep(600)  # the test kills us here
    os._exit(3)


def _half_written(method, count):
    """Wraps a saving method: the `count`-th call writes half a file, stops."""
    calls = [0]

    def wrapper(self, filepath, *args, **kwargs):
        calls[0] += 1
        if calls[0] != count:
            return method(self, filepath, *args, **kwargs)
        method(self, filepath, *args, **kwargs)
        data = Path(filepath).read_bytes()
        with open(filepath, "wb") as f:
            f.write(data[:len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
        _pause()

    return wrapper


class _Hook(keras.callbacks.Callback):
    def __init__(self, kind, epoch, batch):
        super().__init__()
        self.kind, self.at = kind, (epoch, batch)
        self.epoch = None
        self.poisoned = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) != self.at:
            return
        if self.kind == "batch":
            _pause()
        self.poisoned = True
        for weight in self.model.trainable_weights:
            weight.assign(keras.ops.full(weight.shape, np.nan, weight.dtype))


def main(config, run_dir, report):
    hook = os.environ.get("REGKIT_DRIVER_HOOK", "")
    kind, _, where = hook.partition(":")
    extra = []
    if kind in ("batch", "nan"):
        epoch, batch = (int(v) for v in where.split(":"))
        extra.append(_Hook(kind, epoch, batch))
    elif kind == "best_save":
        keras.Model.save = _half_written(keras.Model.save, int(where))
    elif kind == "backup_save":
        keras.Model.save_weights = _half_written(keras.Model.save_weights,
                                                 int(where))
    get_callbacks = ProductionModelBuilder.get_callbacks
    ran = []

    class _Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ran.append(epoch)

        def on_train_end(self, logs=None):
            Path(report).write_text(json.dumps({
                "iterations": int(self.model.optimizer.iterations.numpy()),
                "epochs_run": ran,
            }))

    def with_hooks(self, *args, **kwargs):
        return get_callbacks(self, *args, **kwargs) + extra + [_Record()]

    ProductionModelBuilder.get_callbacks = with_hooks
    return cli.main(["train", "--config", config, "--out", run_dir,
                     "--seed", "0", "--verbose", "0"])


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
