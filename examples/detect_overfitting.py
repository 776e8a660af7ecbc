"""Watch a plain `model.fit` overfit, with keras_regkit's callbacks.

Trains a wide MLP on a small slice of CIFAR-10 twice: once without
regularization (it memorizes the slice and the validation loss turns
within a few epochs) and once with the medium preset's regularization (L2
1e-4, batch norm, dropout 0.4, label smoothing 0.05 and the reference recipe's
augmentation layers). `OverfittingDetector` reports the epoch each run
started to overfit and `WeightStatsMonitor` logs the weight statistics;
both go into each run's `history.csv`.

    python examples/detect_overfitting.py --quick
    python examples/detect_overfitting.py --data-dir ../shared/data --epochs 30

`--plots` also draws each run's loss and accuracy curves
(`training_curves.png` in its folder) and both runs' validation curves
(`validation_curves.png`); docs/gen_figures.py uses them.

Images come from `--data-dir` (a CIFAR-10 copy that
`keras_regkit.data.cifar10.load_cifar10` reads), else `$KERAS_REGKIT_DATA`
or `../shared/data` beside the repository, else the small sample shipped
in the package. Accuracies are on a held-out part of the training split.
"""

import argparse
import os
import warnings
from pathlib import Path

import keras
import numpy as np

from keras_regkit.analysis import plot_training_diagnostics
from keras_regkit.analysis import plot_validation_curves
from keras_regkit.callbacks import OverfittingDetector
from keras_regkit.callbacks import WeightStatsMonitor
from keras_regkit.data.augmentation import reference_augmentation
from keras_regkit.data.cifar10 import load_cifar10
from keras_regkit.data.cifar10 import load_cifar10_sample

REPO = Path(__file__).resolve().parents[1]


def load(data_dir, n_train, n_val, sample_only=False):
    """`(x_train, y_train), (x_val, y_val)`: floats in [0, 1], int labels.

    `sample_only` skips the search for a full copy (`--quick` without
    `--data-dir`): decoding all 50,000 images would outlast the training.
    """
    candidates = [data_dir]
    if not sample_only:
        candidates += [os.environ.get("KERAS_REGKIT_DATA"),
                       REPO.parent / "shared" / "data"]
    folder = next((Path(c) for c in candidates if c and Path(c).exists()),
                  None)
    if folder is not None:
        print(f"Reading CIFAR-10 from {folder} (validation: held-out "
              "training images).")
        with warnings.catch_warnings():  # "no test split": we hold out
            warnings.simplefilter("ignore", UserWarning)
            (x, y), _ = load_cifar10(folder, cache=False)
        x_val, y_val = x[-n_val:], y[-n_val:]
    else:
        print("No CIFAR-10 copy found; using the sample shipped in the "
              "package.")
        (x, y), (x_val, y_val) = load_cifar10_sample()
        x_val, y_val = x_val[:n_val], y_val[:n_val]
    x, y = x[:n_train], y[:n_train]
    scale = np.float32(1 / 255)
    return ((x * scale, y.ravel().astype("int64")),
            (x_val * scale, y_val.ravel().astype("int64")))


def build_mlp(regularized, width, seed):
    """A wide MLP; `regularized` adds the medium preset's regularization."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    x = inputs
    if regularized:
        # Flip, rotation, zoom, translation and contrast, in the model. The
        # policy comes marked so that JAX still compiles the training step
        # (Keras marks rotation, zoom and translation as not jit-compatible).
        x = reference_augmentation(seed=seed)(x)
    x = keras.layers.Flatten()(x)
    for i in range(2):
        reg = keras.regularizers.L2(1e-4) if regularized else None
        x = keras.layers.Dense(width, kernel_regularizer=reg,
                               name=f"dense_{i}")(x)
        if regularized:
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.Activation("relu")(x)
        if regularized:
            x = keras.layers.Dropout(0.4, seed=seed)(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.CategoricalCrossentropy(
            label_smoothing=0.05 if regularized else 0.0),
        metrics=["accuracy"])
    return model


def run(name, regularized, data, args):
    (x, y), (x_val, y_val) = data
    out = Path(args.output) / name
    out.mkdir(parents=True, exist_ok=True)
    # --8<-- [start:callbacks]
    detector = OverfittingDetector(
        threshold=0.1, patience=2, acc_threshold=0.2, verbose=0,
        action=lambda det, epoch, logs: print(
            f"  [{name}] overfitting declared at epoch {epoch}, onset "
            f"{det.onset_epoch}"))
    monitor = WeightStatsMonitor(zero_tol=1e-3)
    callbacks = [detector, monitor, keras.callbacks.CSVLogger(
        str(out / "history.csv"))]
    print(f"\n== {name}: {len(x)} training images, {args.epochs} epochs")
    model = build_mlp(regularized, args.width, args.seed)
    history = model.fit(
        x, keras.utils.to_categorical(y, 10),
        validation_data=(x_val, keras.utils.to_categorical(y_val, 10)),
        epochs=args.epochs, batch_size=32, verbose=0, callbacks=callbacks)
    print(detector.summary())
    # --8<-- [end:callbacks]
    logs = {k: v[-1] for k, v in history.history.items()}
    print("  last epoch weight statistics:")
    for layer in ("dense_0", "dense_1", "head"):
        stats = ", ".join(
            f"{stat} {logs[f'weights/{layer}/{stat}']:.4g}"
            for stat in ("l2_norm", "mean_abs", "zero_fraction",
                         "update_ratio"))
        print(f"    {layer:8s} {stats}")
    print(f"  history written to {out / 'history.csv'}")
    if args.plots:
        plot_training_diagnostics(history, out / "training_curves.png",
                                  title=name.replace("_", " "))
    return detector.onset_epoch, history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="500 images of the package sample (unless --data-dir), "
                        "10 epochs (about a minute on CPU)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--train-size", type=int, default=None,
                        help="default 2000 (500 with --quick)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 20 (10 with --quick)")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/detect_overfitting")
    parser.add_argument("--plots", action="store_true",
                        help="also write training and validation curves "
                        "(PNG) into --output")
    args = parser.parse_args(argv)
    # Flags given explicitly win over --quick's sizes.
    if args.train_size is None:
        args.train_size = 500 if args.quick else 2000
    if args.epochs is None:
        args.epochs = 10 if args.quick else 20
    data = load(args.data_dir, args.train_size, n_val=500,
                sample_only=args.quick)
    plain, plain_history = run("unregularized", False, data, args)
    medium, medium_history = run("medium_regularization", True, data, args)
    if args.plots:
        path = Path(args.output) / "validation_curves.png"
        plot_validation_curves({"unregularized": plain_history,
                                "medium regularization": medium_history},
                               path, title="Validation curves")
        print(f"\nCurves written to {path}")
    print("\nOnset of overfitting (0-based epoch; None = not detected):")
    print(f"  unregularized:          {plain}")
    print(f"  medium regularization:  {medium}")


if __name__ == "__main__":
    main()
