"""Validation accuracy against wall time on the full CIFAR-10 training split.

Trains a capacity preset through `ProductionModelBuilder` and, side by side,
the reference recipe as written (its CNN, its five augmentation layers
applied once to the whole array before `fit`, L2 in the kernels *and* AdamW
weight decay, batch 64). The two runs take turns epoch by epoch in one
process (a turnstile callback hands over at each epoch end), so both see the
same machine load; each is charged only for its own epochs. The script
prints validation accuracy per epoch with the elapsed time, and each recipe's
best accuracy at equal wall time.

Data: the 50,000 training images of ../shared/data, shuffled with a fixed
seed; the last 5,000 are the validation split, the other 45,000 train.

    python bench/time_to_accuracy.py --capacity medium --minutes 20

`--capacity fast` runs the fast preset's benchmark instead (see
`bench/_fast.py`): accuracy with and without test-time augmentation over
`--seeds`, wall time, throughput per `--precisions`, and with `--ablate` the
table of each trick switched off:

    python bench/time_to_accuracy.py --capacity fast --seeds 0 1 \
        --precisions float32 mixed_bfloat16 --ablate

With the lossless pickled release, `--data-dir PATH --split test` trains on
all 50,000 training images and reports test accuracy, airbench's protocol.
"""

import argparse
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's oneDNN kernels on AVX2-only CPUs too (2.3x faster there).
from keras_regkit._onednn import prefer_onednn  # noqa: E402

prefer_onednn()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_regkit.data.cifar10 import load_cifar10  # noqa: E402

from _machine import SHARED  # noqa: E402,F401 (also imported from here)



def split_cifar10(data_dir, n_val=5000, seed=0, limit=None):
    """45,000 / 5,000 split of the training images after a seeded shuffle."""
    (x, y), _ = load_cifar10(data_dir=data_dir)
    y = np.asarray(y).reshape(-1)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    if limit:
        x, y = x[:limit], y[:limit]
        n_val = max(len(x) // 10, 1)
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]


def benchmark_data(data_dir, split="validation", limit=None):
    """The benchmark's `(x_train, y_train, x_eval, y_eval)`.

    `split="validation"`: the 45,000 / 5,000 split of the training images
    (`split_cifar10`). `split="test"`: all training images, evaluated on the
    source's test split, as airbench reports its accuracy; the source must
    have one (the pickled `cifar-10-batches-py` release does, the JPEG tree
    in ../shared/data does not).
    """
    if split == "validation":
        return split_cifar10(data_dir, limit=limit)
    if split != "test":
        raise ValueError(f"`split` must be 'validation' or 'test'. "
                         f"Received: split={split!r}")
    (x, y), (x_test, y_test) = load_cifar10(data_dir=data_dir)
    if len(x_test) == 0:
        raise ValueError(
            f"--split test needs a source with a test split, and "
            f"{str(data_dir)!r} has none. Pass --data-dir the pickled "
            "release (the cifar-10-batches-py folder or "
            "cifar-10-python.tar.gz), or use --split validation.")
    if limit:
        x, y = x[:limit], y[:limit]
    return x, np.asarray(y).reshape(-1), x_test, np.asarray(y_test).reshape(-1)


class Turnstile(keras.callbacks.Callback):
    """Lets one of several concurrent `fit` calls run an epoch at a time.

    Each run is charged only for the time between taking and handing over
    the token, and stops itself once its budget is spent.
    """

    def __init__(self, name, token, order, budget_s, log):
        super().__init__()
        self.name, self.token, self.order = name, token, order
        self.budget_s, self.log = budget_s, log
        self.elapsed, self._start = 0.0, None

    def on_epoch_begin(self, epoch, logs=None):
        with self.token:
            self.token.wait_for(lambda: self.order[0] == self.name)
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.elapsed += time.perf_counter() - self._start
        logs = logs or {}
        self.log.append((self.name, epoch, self.elapsed,
                         float(logs.get("val_accuracy", float("nan")))))
        print(f"{self.name:>12s} epoch {epoch + 1:3d}  {self.elapsed:8.1f} s  "
              f"val_accuracy {logs.get('val_accuracy', float('nan')):.4f}",
              flush=True)
        if self.elapsed >= self.budget_s:
            self.model.stop_training = True
        self._hand_over()

    def on_train_end(self, logs=None):
        with self.token:
            if self.name in self.order:
                self.order.remove(self.name)
            self.token.notify_all()

    def _hand_over(self):
        with self.token:
            if len(self.order) > 1 and self.order[0] == self.name:
                self.order.append(self.order.pop(0))
            self.token.notify_all()


def seed_cnn(num_classes=10, l2=1e-4, conv_dropout=0.2, dense_dropout=0.4,
             input_shape=(32, 32, 3)):
    """The reference CNN as the reference recipe writes it.

    Biases, kernel L2 and max-norm included.
    """
    reg = keras.regularizers.L2(l2)
    inputs = keras.Input(input_shape)
    x = inputs
    for filters, rate in ((64, conv_dropout), (128, conv_dropout * 1.5)):
        x = keras.layers.Conv2D(filters, 3, padding="same",
                                kernel_regularizer=reg)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.SpatialDropout2D(rate)(x)
        x = keras.layers.Conv2D(filters, 3, padding="same",
                                kernel_regularizer=reg)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.SpatialDropout2D(rate)(x)
    x = keras.layers.Flatten()(x)
    for units in (512, 256):
        x = keras.layers.Dense(
            units, kernel_regularizer=keras.regularizers.L2(l2 * 10),
            kernel_constraint=keras.constraints.MaxNorm(3.0))(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.Dropout(dense_dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def run_reference_recipe(data, epochs, turnstile):
    """The reference recipe's train(): augment the array once, then fit."""
    x_train, y_train, x_val, y_val = data
    from keras_regkit.data.augmentation import reference_augmentation

    keras.utils.set_random_seed(0)
    augment = reference_augmentation()
    x = x_train.astype("float32") / 255.0
    x = np.concatenate([
        keras.ops.convert_to_numpy(augment(x[i:i + 1000], training=True))
        for i in range(0, len(x), 1000)])
    model = seed_cnn()
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.05),
        metrics=["accuracy"])
    model.fit(
        x, keras.utils.to_categorical(y_train, 10), batch_size=64,
        epochs=epochs, verbose=0,
        validation_data=(x_val.astype("float32") / 255.0,
                         keras.utils.to_categorical(y_val, 10)),
        callbacks=[
            keras.callbacks.EarlyStopping("val_loss", patience=15,
                                          restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5,
                                              patience=5, min_lr=1e-7),
            turnstile,
        ])


def run_preset(data, capacity, epochs, batch_size, seed, precision, turnstile):
    from keras_regkit import ProductionModelBuilder

    x_train, y_train, x_val, y_val = data
    builder = ProductionModelBuilder((32, 32, 3), 10, capacity, seed=seed,
                                     precision=precision)
    builder.train(x_train, y_train, x_val, y_val, epochs=epochs,
                  batch_size=batch_size, verbose=0, callbacks=[turnstile])


def best_by(log, name, seconds):
    accs = [acc for who, _, t, acc in log if who == name and t <= seconds]
    return max(accs) if accs else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", default="medium")
    parser.add_argument("--minutes", type=float, default=20.0,
                        help="wall-time budget of each recipe")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--split", choices=("validation", "test"),
                        default="validation",
                        help="validation: 45,000 / 5,000 of the training "
                             "split; test: all training images, evaluated "
                             "on the source's test split (airbench's figure)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N images (smoke runs)")
    parser.add_argument("--no-reference-recipe", "--no-seed-recipe",
                        dest="no_reference_recipe", action="store_true",
                        help="train only the preset")
    fast = parser.add_argument_group("--capacity fast")
    fast.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    fast.add_argument("--precisions", nargs="+", default=["float32"],
                      help="the first trains every seed; the others only "
                           "measure throughput, over --throughput-epochs")
    fast.add_argument("--throughput-epochs", type=int, default=None)
    fast.add_argument("--ablate", action="store_true",
                      help="also train with each trick switched off")
    fast.add_argument("--loader", choices=("tfdata", "array", "device"),
                      default="tfdata",
                      help="device: data and augmentation on the JAX "
                           "device, Lookahead in the compiled step")
    fast.add_argument("--fast-epochs", type=int, default=None,
                      help="override the preset's epochs (smoke runs)")
    fast.add_argument("--verbose", type=int, default=0)
    fast.add_argument("--jit-compile", choices=("auto", "true", "false"),
                      default="auto")
    args = parser.parse_args()

    try:
        data = benchmark_data(args.data_dir, args.split, limit=args.limit)
    except ValueError as error:
        parser.error(str(error))
    if args.split == "test":
        print(f"data: {len(data[0])} train / {len(data[2])} test images "
              "(accuracies below are on the test split)")
    else:
        print(f"data: {len(data[0])} train / {len(data[2])} validation "
              "images (seeded shuffle of the training split, last part "
              "held out)")
    if args.capacity == "fast":
        import _fast

        _fast.run(data, args.seeds, args.precisions, args.ablate,
                  args.loader, args.fast_epochs, args.throughput_epochs,
                  args.verbose, {"auto": "auto", "true": True,
                                 "false": False}[args.jit_compile])
        return
    budget = args.minutes * 60
    token, log = threading.Condition(), []
    name = f"{args.capacity} preset"
    order = [name] + ([] if args.no_reference_recipe else ["reference recipe"])
    runs = [threading.Thread(target=run_preset, args=(
        data, args.capacity, args.epochs, args.batch_size, args.seed,
        args.precision, Turnstile(name, token, order, budget, log)))]
    if not args.no_reference_recipe:
        runs.append(threading.Thread(target=run_reference_recipe, args=(
            data, args.epochs, Turnstile("reference recipe", token, order, budget,
                                         log))))
    start = time.perf_counter()
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    names = sorted({who for who, *_ in log})
    common = min(max(t for who, _, t, _ in log if who == n) for n in names)
    print(f"\nbest validation accuracy within {common:.0f} s of training each:")
    for n in names:
        print(f"  {n:>14s}: {best_by(log, n, common):.4f}")


if __name__ == "__main__":
    main()
