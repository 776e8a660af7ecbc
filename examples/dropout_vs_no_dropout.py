"""With and without dropout: the reference recipe's Q&A experiment.

On CIFAR-10 images.

The Q&A trains the same MLP twice, Flatten -> Dense 128 -> Dense 64 ->
softmax, once with Dropout(0.5) after each hidden layer, with Adam and
sparse cross-entropy for 5 epochs and 20% of the training images held out
(`validation_split=0.2`). It used MNIST, which cannot be downloaded here;
CIFAR-10 images stand in. The script prints a table of the final train and
validation accuracy and their gap, the reference recipe's quick advice for
each model, and writes the validation curves of both to one PNG.

    python examples/dropout_vs_no_dropout.py --quick
    python examples/dropout_vs_no_dropout.py --data-dir ../shared/data

The same comparison on the CNN preset, with the builder's full pipeline,
is one command: `regkit compare --capacity small --ablate dropout`.

Images come from `--data-dir` (any CIFAR-10 copy `load_cifar10` reads),
else `$KERAS_REGKIT_DATA` or `../shared/data` beside the repository, else
the 2,000-image sample shipped in the package (always the sample with
`--quick`, unless `--data-dir` is given).
"""

import argparse
import os
import warnings
from pathlib import Path

import keras
import numpy as np

from keras_regkit.analysis import calculate_dropout_rate
from keras_regkit.analysis import plot_training_diagnostics
from keras_regkit.analysis import plot_validation_curves
from keras_regkit.analysis import quick_regularization_advice
from keras_regkit.data.cifar10 import load_cifar10
from keras_regkit.data.cifar10 import load_cifar10_sample

REPO = Path(__file__).resolve().parents[1]


def load_images(data_dir, n_images, sample_only=False):
    """`n_images` CIFAR-10 training images in [0, 1] and integer labels."""
    candidates = [data_dir] if sample_only else [
        data_dir, os.environ.get("KERAS_REGKIT_DATA"),
        REPO.parent / "shared" / "data"]
    folder = next((Path(c) for c in candidates if c and Path(c).exists()),
                  None)
    if folder is not None:
        print(f"Reading CIFAR-10 from {folder}.")
        with warnings.catch_warnings():  # a copy without the test split
            warnings.simplefilter("ignore", UserWarning)
            (x, y), _ = load_cifar10(folder, cache=False)
    else:
        print("No CIFAR-10 copy found; using the sample shipped in the "
              "package.")
        (x, y), _ = load_cifar10_sample()
    order = np.random.default_rng(0).permutation(len(x))[:n_images]
    return (x[order].astype("float32") / 255.0,
            y[order].ravel().astype("int64"))


def build_mlp(dropout, seed):
    """The Q&A's MLP, with `Dropout(0.5)` after each hidden layer or not."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((32, 32, 3)), keras.layers.Flatten()]
    for units in (128, 64):
        layers.append(keras.layers.Dense(units, activation="relu"))
        if dropout:
            layers.append(keras.layers.Dropout(0.5, seed=seed))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 images of the package sample (unless "
                        "--data-dir) and 3 epochs (seconds on CPU)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--images", type=int, default=None,
                        help="training images, 20%% held out (default "
                        "10,000, 1,000 with --quick; the package sample "
                        "has 2,000)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs (default 5, the Q&A's; 3 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/dropout_vs_no_dropout")
    args = parser.parse_args(argv)
    # Flags given explicitly win over --quick's sizes.
    if args.images is None:
        args.images = 1000 if args.quick else 10_000
    if args.epochs is None:
        args.epochs = 3 if args.quick else 5
    x, y = load_images(args.data_dir, args.images, sample_only=args.quick)
    out = Path(args.out)
    histories, rows = {}, []
    for name, dropout in (("without dropout", False), ("with dropout", True)):
        print(f"\n== {name}: {len(x)} images (20% validation), "
              f"{args.epochs} epochs")
        model = build_mlp(dropout, args.seed)
        history = model.fit(x, y, epochs=args.epochs, batch_size=32,
                            validation_split=0.2, verbose=2).history
        histories[name] = history
        final = {k: v[-1] for k, v in history.items()}
        rows.append((name, final["accuracy"], final["val_accuracy"]))
        print(quick_regularization_advice(
            final["accuracy"], final["val_accuracy"], final["loss"],
            final["val_loss"]))
        plot_training_diagnostics(
            history, out / f"{name.replace(' ', '_')}.png", title=name)
    print("\nmodel               train acc  val acc  gap")
    for name, train_acc, val_acc in rows:
        print(f"{name:18s}  {train_acc:9.4f}  {val_acc:7.4f}  "
              f"{train_acc - val_acc:+.4f}")
    plot_validation_curves(histories, out / "validation_curves.png",
                           title="Dropout(0.5) vs none")
    print(f"\nValidation curves: {out / 'validation_curves.png'}")
    (_, plain_train, plain_val), (_, drop_train, drop_val) = rows
    print(f"Dropout changed training accuracy by "
          f"{drop_train - plain_train:+.4f}, validation accuracy by "
          f"{drop_val - plain_val:+.4f}, and the gap from "
          f"{plain_train - plain_val:+.4f} to {drop_train - drop_val:+.4f}.")
    n_train = int(len(x) * 0.8)
    print("The reference recipe's heuristic for these layers: "
          "calculate_dropout_rate("
          f"128, {n_train}) = {calculate_dropout_rate(128, n_train):.2f}, "
          f"calculate_dropout_rate(64, {n_train}) = "
          f"{calculate_dropout_rate(64, n_train):.2f} (the Q&A uses 0.5 for "
          "both).")
    print("The same comparison on the CNN preset: regkit compare --capacity "
          "small --ablate dropout")


if __name__ == "__main__":
    main()
