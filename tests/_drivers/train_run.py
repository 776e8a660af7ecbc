"""Trains a tiny preset into a run folder, with hooks a test uses to kill it.

Usage: python tests/_drivers/train_run.py RUN_DIR REPORT_JSON

`ProductionModelBuilder((32, 32, 3), 10, "small", seed=0, ...)` with two
narrow conv stages, 3 epochs and a cosine learning-rate schedule trains on
1,000 training and 200 validation images of the embedded CIFAR-10 sample
(10 steps per epoch) with `run_dir=RUN_DIR`, through tf.data on
TensorFlow and the NumPy loader on JAX and PyTorch. The settings are those
of `examples/multi_worker.py`, so that a job this driver started can be
resumed by the README's commands (tests/training/test_workers.py).
`REGKIT_DRIVER_HOOK` chooses where the process stops and waits to be killed
(it writes the file named by `REGKIT_DRIVER_MARKER`, then sleeps):

- `batch:E:B`: at the end of batch B (0-based) of epoch E (0-based);
- `keras_save:N`: during the N-th `.keras` save of this process, after
  cutting the file being written to half its length;
- `weights_save:N`: the same during the N-th `save_weights` (the backup).

When training ends, REPORT_JSON receives the optimizer's step count and the
epochs this process ran.

With `TF_CONFIG` set, the process is one worker of a
`tf.distribute.MultiWorkerMirroredStrategy` job (TensorFlow backend), made
before anything else runs on TensorFlow.
"""

import json
import os
import sys
import time
from pathlib import Path

import keras

from keras_regkit.training.builder import ProductionModelBuilder
from keras_regkit.data import load_cifar10_sample

CONFIG = dict(seed=0, conv_filters=(8, 16), dense_units=(32,),
              batch_norm=False, dropout_conv=0.0, dropout_dense=0.0,
              augmentation="none", lr_schedule="cosine", epochs=3,
              batch_size=100)
N_TRAIN, N_VAL = 1000, 200


def tiny_builder(strategy=None):
    # tf.data on TensorFlow; NumPy batches (the TensorFlow-free path) on
    # JAX and PyTorch.
    loader = "tf.data" if keras.backend.backend() == "tensorflow" \
        else "arrays"
    return ProductionModelBuilder((32, 32, 3), 10, "small", loader=loader,
                                  strategy=strategy, **CONFIG)


def _pause():
    Path(os.environ["REGKIT_DRIVER_MARKER"]).write_text(str(os.getpid()))
    time.sleep(300)  # the test kills this process here
    os._exit(3)


def _cut_short(method, count):
    """Wraps a save method: its `count`-th call leaves half a file, pauses."""
    calls = [0]

    def save(self, filepath, *args, **kwargs):
        method(self, filepath, *args, **kwargs)
        calls[0] += 1
        if calls[0] == count:
            data = Path(filepath).read_bytes()
            Path(filepath).write_bytes(data[:len(data) // 2])
            _pause()

    return save


class _PauseAtBatch(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            _pause()


class _Report(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path, self.epochs = path, []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_train_end(self, logs=None):
        Path(self.path).write_text(json.dumps({
            "iterations": int(self.model.optimizer.iterations.numpy()),
            "epochs_run": self.epochs,
        }))


def main(run_dir, report):
    strategy = None
    if os.environ.get("TF_CONFIG"):
        import tensorflow as tf

        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    kind, _, where = os.environ.get("REGKIT_DRIVER_HOOK", "").partition(":")
    callbacks = [_Report(report)]
    if kind == "batch":
        callbacks.append(_PauseAtBatch(*(int(v) for v in where.split(":"))))
    elif kind == "keras_save":
        keras.Model.save = _cut_short(keras.Model.save, int(where))
    elif kind == "weights_save":
        keras.Model.save_weights = _cut_short(keras.Model.save_weights,
                                              int(where))
    (x, y), (x_val, y_val) = load_cifar10_sample()
    tiny_builder(strategy).train(x[:N_TRAIN], y[:N_TRAIN], x_val[:N_VAL],
                         y_val[:N_VAL], run_dir=run_dir, callbacks=callbacks,
                         verbose=0)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
