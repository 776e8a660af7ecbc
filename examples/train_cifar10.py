"""The reference recipe's use of ProductionModelBuilder, end to end.

On CIFAR-10.

By default it trains on the CIFAR-10 sample shipped inside keras_regkit
(offline); `--data-dir` points it at the full training split (pickled
batches, `cifar-10-python.tar.gz`, or a folder-per-class tree or its
`.tar.gz`). As in the reference recipe's `main()`: pixels scaled to
[0, 1], one-hot
labels, the last 10% of the training images as validation, the medium
preset, then test (here: validation) accuracy and top-5, and the model saved
as `.keras`.

    python examples/train_cifar10.py --quick
    python examples/train_cifar10.py --data-dir ../shared/data --epochs 30
"""

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_regkit import ProductionModelBuilder  # noqa: E402
from keras_regkit.data import load_cifar10, load_cifar10_sample  # noqa: E402


def load(data_dir):
    if data_dir is None:
        (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
        return x_train, y_train, x_val, y_val
    (x, y), _ = load_cifar10(data_dir=data_dir)
    n_val = len(x) // 10
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--capacity", default="medium")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None,
                        help="where to save the model (default: a temp dir)")
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: 400 images, 1 epoch, small net")
    args = parser.parse_args(argv)

    x_train, y_train, x_val, y_val = load(args.data_dir)
    overrides = {}
    if args.quick:
        x_train, y_train = x_train[:400], y_train[:400]
        x_val, y_val = x_val[:100], y_val[:100]
        args.epochs = 1
        overrides = dict(conv_filters=(8, 16), dense_units=(32,))
    # --8<-- [start:builder]
    # The reference recipe's preprocessing: scale to [0, 1] and one-hot labels.
    x_train = x_train.astype("float32") / 255.0
    x_val = x_val.astype("float32") / 255.0
    y_train = keras.utils.to_categorical(y_train, 10)
    y_val = keras.utils.to_categorical(y_val, 10)

    builder = ProductionModelBuilder(input_shape=(32, 32, 3), num_classes=10,
                                     model_capacity=args.capacity, seed=0,
                                     **overrides)
    print("Regularization config:", builder.reg_config)
    model, history = builder.train(x_train, y_train, x_val, y_val,
                                   epochs=args.epochs,
                                   batch_size=args.batch_size, verbose=2)
    loss, accuracy, top5 = model.evaluate(x_val, y_val, verbose=0)
    print(f"Validation accuracy: {accuracy:.4f}  top-5: {top5:.4f}  "
          f"loss: {loss:.4f}  ({len(history.epoch)} epochs)")
    # --8<-- [end:builder]
    out = args.out or Path(tempfile.mkdtemp(prefix="regkit-example-"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{builder.preset.name}_cifar10.keras"
    model.save(path)
    print(f"Model saved to {path}")


if __name__ == "__main__":
    main()
