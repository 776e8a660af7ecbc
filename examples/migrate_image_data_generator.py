"""Migrating a legacy `ImageDataGenerator` set-up to a tf.data pipeline.

Many tutorials augment images like this (Keras 2, now removed):

    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    datagen = ImageDataGenerator(
        rotation_range=20,
        width_shift_range=0.2,
        height_shift_range=0.2,
        horizontal_flip=True,
    )
    model.fit(datagen.flow(x_train, y_train, batch_size=64),
              validation_data=(x_val, y_val), epochs=10)

With keras_regkit the same arguments become Keras 3 preprocessing layers,
and `make_dataset` runs them per batch, every epoch, inside a parallel,
prefetched tf.data pipeline:

    augment = augmentation_from_image_data_generator(
        rotation_range=20, width_shift_range=0.2, height_shift_range=0.2,
        horizontal_flip=True, seed=0)
    train_ds = make_dataset(x_train, y_train, 64, training=True,
                            augmentation=augment, num_classes=10, seed=0)
    val_ds = make_dataset(x_val, y_val, 256, training=False, num_classes=10)
    model.fit(train_ds, validation_data=val_ds, epochs=10)

Or put the layers at the front of the model (`--in-model`), where they run
inside the compiled training step and are the identity at inference.

This script trains a small CNN on the CIFAR-10 sample shipped with the
package (2,000 training and 500 validation images); `--quick` runs in a few
seconds. Accuracies are on the sample's validation split.

    python examples/migrate_image_data_generator.py --quick
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_regkit.data import augmentation_from_image_data_generator  # noqa
from keras_regkit.data import augmentation_model_layers  # noqa: E402
from keras_regkit.data import load_cifar10_sample  # noqa: E402
from keras_regkit.data import make_dataset  # noqa: E402

# --8<-- [start:legacy_args]
# The tutorial's ImageDataGenerator arguments, unchanged.
LEGACY_ARGS = dict(rotation_range=20, width_shift_range=0.2,
                   height_shift_range=0.2, horizontal_flip=True)
# --8<-- [end:legacy_args]


def build_model(front_layers=()):
    """A small CNN for 32x32x3 images in [0, 1], 10 classes."""
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for layer in front_layers:
        x = layer(x)
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same",
                                activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one short epoch on 512 images (seconds)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--in-model", action="store_true",
                        help="augment inside the model, not the pipeline")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(args.seed)

    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    epochs = args.epochs
    if args.quick:
        x_train, y_train, x_val, y_val = (x_train[:512], y_train[:512],
                                          x_val[:256], y_val[:256])
        epochs = 1
    # --8<-- [start:pipeline]
    augment = augmentation_from_image_data_generator(**LEGACY_ARGS,
                                                     seed=args.seed)
    print("ImageDataGenerator", LEGACY_ARGS, "->",
          [type(layer).__name__ for layer in augment.layers])

    if args.in_model:
        model = build_model(augmentation_model_layers(augment))
        pipeline_augment = None
    else:
        model = build_model()
        pipeline_augment = augment
    train_ds = make_dataset(x_train, y_train, args.batch_size, training=True,
                            augmentation=pipeline_augment, num_classes=10,
                            seed=args.seed)
    val_ds = make_dataset(x_val, y_val, 256, training=False, num_classes=10)
    # --8<-- [end:pipeline]
    model.compile(optimizer=keras.optimizers.AdamW(2e-3),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                        shuffle=False, verbose=2)
    seconds = time.perf_counter() - start
    where = "model" if args.in_model else "tf.data pipeline"
    print(f"augmentation in the {where}: {epochs} epoch(s) in "
          f"{seconds:.1f} s, train accuracy "
          f"{history.history['accuracy'][-1]:.3f}, validation accuracy "
          f"(sample's val split) {history.history['val_accuracy'][-1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
