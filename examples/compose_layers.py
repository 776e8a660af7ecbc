"""keras_regkit building blocks composed into a plain Keras functional model.

No builder: the blocks go where a Keras layer, regularizer, constraint or
loss would go.

- a conv stem with `GaussianWeightNoise` on its kernel, `GroupLasso` on its
  filters and `DropBlock2D` on its feature maps;
- a residual block whose branch goes through `StochasticDepth`;
- a `DropConnect` Dense with an `ElasticNet` regularizer and a
  `SpectralNormConstraint`, then a `ConcreteDropout` Dense that learns its
  own drop rate;
- `MCDropout` (off by default) before the softmax head;
- compiled with `LabelSmoothingCrossEntropy` on integer labels.

The model trains briefly on real CIFAR-10 images (the sample shipped in the
package), is evaluated, saved to `.keras`, reloaded with Keras's default
`safe_mode=True`, and the reloaded model's inference outputs are checked
against the original's. Finally `set_mc_dropout` turns Monte Carlo dropout
on for a few stochastic predictions (batch norm stays in inference mode).

    python examples/compose_layers.py --quick
    python examples/compose_layers.py --epochs 15 --out runs/compose
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_regkit as rk  # noqa: E402
from keras_regkit.constraints import spectral_norm  # noqa: E402
from keras_regkit.data import load_cifar10_sample  # noqa: E402

L = keras.layers
MAX_SPECTRAL_NORM = 3.0


def batch_norm():
    # Momentum 0.9: the moving statistics settle within a short training.
    return L.BatchNormalization(momentum=0.9)


def conv_bn_relu(x, filters, regularizer=None):
    x = L.Conv2D(filters, 3, padding="same", use_bias=False,
                 kernel_regularizer=regularizer)(x)
    return L.Activation("relu")(batch_norm()(x))


# --8<-- [start:build_model]
def build_model(num_train, seed=0):
    """The composed CNN; `num_train` sets the concrete dropout terms."""
    inputs = keras.Input((32, 32, 3), name="image")
    stem = L.Conv2D(32, 3, padding="same", use_bias=False,
                    kernel_regularizer=rk.GroupLasso(1e-4))
    x = rk.GaussianWeightNoise(stem, stddev=0.01, seed=seed)(inputs)
    x = L.Activation("relu")(batch_norm()(x))
    x = rk.DropBlock2D(0.1, block_size=3, seed=seed + 1)(x)
    x = L.MaxPooling2D()(x)
    x = L.MaxPooling2D()(conv_bn_relu(x, 64, rk.GroupLasso(1e-4)))

    branch = conv_bn_relu(x, 64)
    branch = batch_norm()(
        L.Conv2D(64, 3, padding="same", use_bias=False)(branch))
    branch = rk.StochasticDepth(0.1, seed=seed + 2)(branch)
    x = L.Activation("relu")(L.Add()([x, branch]))

    x = L.GlobalAveragePooling2D()(x)
    dense = L.Dense(
        128, activation="relu", kernel_regularizer=rk.ElasticNet(1e-5, 1e-4),
        kernel_constraint=rk.SpectralNormConstraint(MAX_SPECTRAL_NORM),
        name="dense_128")
    x = rk.DropConnect(dense, rate=0.2, seed=seed + 3, name="drop_connect")(x)
    # The paper's settings: length-scale 1e-2 prior, N training examples.
    x = rk.ConcreteDropout(
        L.Dense(64, activation="relu"), weight_regularizer=1e-4 / num_train,
        dropout_regularizer=2.0 / num_train, seed=seed + 4,
        name="concrete_dropout")(x)
    x = rk.MCDropout(0.3, mc=False, seed=seed + 5, name="mc_dropout")(x)
    outputs = L.Dense(10, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="composed_cnn")
    model.compile(keras.optimizers.Adam(2e-3),
                  loss=rk.LabelSmoothingCrossEntropy(0.1),
                  metrics=["accuracy"])
    return model
# --8<-- [end:build_model]


def mc_predictions(model, x, passes):
    """`passes` stochastic predictions, shape (passes, N, classes)."""
    return np.stack([model.predict(x, verbose=0) for _ in range(passes)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,024 training images, 3 epochs, 10 MC passes")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 30 (3 with --quick)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mc-passes", type=int, default=None,
                        help="default 20 (10 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: a new temp folder)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)

    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    if args.quick:
        x_train, y_train = x_train[:1024], y_train[:1024]
        x_val, y_val = x_val[:250], y_val[:250]
    # Flags given explicitly win over --quick's sizes.
    if args.epochs is None:
        args.epochs = 3 if args.quick else 30
    if args.mc_passes is None:
        args.mc_passes = 10 if args.quick else 20
    x_train = x_train.astype("float32") / 255.0
    x_val = x_val.astype("float32") / 255.0
    y_train, y_val = y_train.ravel().astype("int64"), y_val.ravel().astype(
        "int64")
    out = args.out or Path(tempfile.mkdtemp(prefix="compose_layers_"))
    out.mkdir(parents=True, exist_ok=True)

    model = build_model(len(x_train), seed=args.seed)
    ours = sorted({type(layer).__name__ for layer in model.layers
                   if type(layer).__module__.startswith("keras_regkit")})
    print(f"{model.name}: {model.count_params():,} parameters; keras_regkit "
          f"layers: {', '.join(ours)}")
    print(f"Training on {len(x_train)} CIFAR-10 images for {args.epochs} "
          f"epochs (batch {args.batch_size})...")
    model.fit(x_train, y_train, validation_data=(x_val, y_val),
              epochs=args.epochs, batch_size=args.batch_size, verbose=2)

    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    print(f"\nValidation ({len(x_val)} images): loss {loss:.4f}, accuracy "
          f"{accuracy:.4f}")
    concrete = model.get_layer("concrete_dropout")
    print(f"ConcreteDropout learned drop rate p = "
          f"{float(keras.ops.convert_to_numpy(concrete.p)):.4f} (started at "
          f"0.1)")
    sigma = spectral_norm(model.get_layer("drop_connect").layer.kernel)
    print(f"Spectral norm of the DropConnect Dense kernel: "
          f"{float(keras.ops.convert_to_numpy(sigma)):.4f} (bound "
          f"{MAX_SPECTRAL_NORM})")

    # --8<-- [start:save_reload]
    path = out / "composed_cnn.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)  # default safe_mode=True
    original = model.predict(x_val, verbose=0)
    again = reloaded.predict(x_val, verbose=0)
    diff = float(np.max(np.abs(original - again)))
    same = bool(np.allclose(original, again, rtol=0.0, atol=1e-6))
    print(f"\nSaved to {path} and reloaded (safe_mode=True): reloaded "
          f"outputs equal the original: {same} (max |diff| = {diff:.3g} on "
          f"{len(x_val)} images)")
    if not same:
        raise SystemExit("the reloaded model's outputs differ")
    # --8<-- [end:save_reload]

    count = rk.set_mc_dropout(reloaded, True)
    samples = mc_predictions(reloaded, x_val, args.mc_passes)
    mean, std = samples.mean(axis=0), samples.std(axis=0)
    predicted = mean.argmax(axis=1)
    spread = std[np.arange(len(predicted)), predicted]
    print(f"\nMonte Carlo dropout on the reloaded model ({count} MC layer, "
          f"{args.mc_passes} passes): accuracy of the mean "
          f"{(predicted == y_val).mean():.4f} (deterministic "
          f"{(again.argmax(axis=1) == y_val).mean():.4f}); std of the "
          f"predicted class: mean {spread.mean():.4f}, max {spread.max():.4f}")
    print(f"   passes differ: {not np.allclose(samples[0], samples[1])}")
    rk.set_mc_dropout(reloaded, False)
    back = np.array_equal(reloaded.predict(x_val, verbose=0), again)
    print(f"   MC off again, deterministic outputs restored: {back}")
    print(f"\nDone in {time.perf_counter() - start:.0f} s; files in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
