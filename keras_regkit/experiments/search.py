"""The reference recipe's progressive regularization search: a ladder of L2 and dropout.

Each rung trains the same small MLP with more regularization; the table
shows where the train/validation gap closes without losing accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from keras_regkit._validation import check_float, check_int, check_seed
from keras_regkit._validation import check_non_negative, check_rate, invalid
from keras_regkit._images import to_float_images
from keras_regkit.analysis._common import integer_labels

LADDER = (
    {"name": "No regularization", "l2": 0.0, "dropout": 0.0},
    {"name": "Light", "l2": 1e-5, "dropout": 0.1},
    {"name": "Moderate", "l2": 1e-4, "dropout": 0.3},
    {"name": "Heavy", "l2": 1e-3, "dropout": 0.5},
    {"name": "Very heavy", "l2": 1e-2, "dropout": 0.6},
)


def _check_configs(
        configs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(configs, Mapping) or not configs:
        raise invalid("configs", configs,
                      "a non-empty list of {'name', 'l2', 'dropout'} mappings")
    checked: list[dict[str, Any]] = []
    for i, config in enumerate(configs):
        if not isinstance(config, Mapping) or set(config) - {
                "name", "l2", "dropout"}:
            raise invalid("configs", config, "mappings with keys among "
                          "'name', 'l2' and 'dropout'")
        checked.append({
            "name": str(config.get("name", f"config {i}")),
            "l2": check_non_negative("l2", config.get("l2", 0.0)),
            "dropout": check_rate("dropout", config.get("dropout", 0.0)),
        })
    return checked


def build_search_mlp(input_shape: Sequence[int], num_classes: int, l2: float,
                     dropout: float,
                     hidden_units: Sequence[int] = (256, 128)) -> keras.Model:
    """The reference recipe's MLP: Flatten -> [Dense -> Dropout] x 2 -> softmax.

    Args:
        input_shape: shape of one example.
        num_classes: number of classes.
        l2: L2 strength on the hidden kernels (0 for none).
        dropout: dropout rate after each hidden layer (0 for none).
        hidden_units: hidden widths. Defaults to `(256, 128)`.
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    for units in hidden_units:
        x = keras.layers.Dense(
            units, activation="relu",
            kernel_regularizer=keras.regularizers.L2(l2) if l2 else None)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def format_table(records: Sequence[Mapping[str, Any]],
                 best: Mapping[str, Any] | None = None) -> str:
    """A plain-text table of search records (no pandas)."""
    header = ("Config", "L2", "Dropout", "Train acc", "Val acc", "Gap",
              "Epochs", "Time (s)")
    rows = [[("* " if record is best else "  ") + record["name"],
             f"{record['l2']:g}", f"{record['dropout']:.2f}",
             f"{record['train_acc']:.4f}", f"{record['val_acc']:.4f}",
             f"{record['gap']:+.4f}", str(record["epochs"]),
             f"{record['time_s']:.1f}"] for record in records]
    widths = [max(len(h), *(len(r[i]) for r in rows))
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths))
              for row in rows]
    return "\n".join(lines)


def select_best(records: Sequence[dict[str, Any]],
                min_val_acc: float = 0.7) -> tuple[dict[str, Any], str]:
    """The reference recipe's choice: smallest gap among val_acc > `min_val_acc`.

    When no record passes, the one with the highest validation accuracy.

    Returns:
        `(best_record, reason)`.
    """
    passing = [r for r in records if r["val_acc"] > min_val_acc]
    if passing:
        return (min(passing, key=lambda r: r["gap"]),
                f"smallest gap among val_acc > {min_val_acc:g}")
    return (max(records, key=lambda r: r["val_acc"]),
            f"highest val_acc (none above {min_val_acc:g})")


def progressive_regularization_search(
    X_train: npt.ArrayLike, y_train: npt.ArrayLike, X_val: npt.ArrayLike,
    y_val: npt.ArrayLike, configs: Sequence[Mapping[str, Any]] | None = None,
    epochs: int = 50, batch_size: int = 64, patience: int = 5,
    hidden_units: Sequence[int] = (256, 128), learning_rate: float = 1e-3,
    min_val_acc: float = 0.7, seed: int | None = None, verbose: int = 0,
) -> dict[str, Any]:
    """Trains the reference recipe's ladder of L2/dropout settings and tabulates them.

    Each config trains `build_search_mlp` with Adam and EarlyStopping on
    `val_loss` (`patience`, best weights restored) for up to `epochs`;
    a record keeps the best training and validation accuracy over the
    epochs, their gap, the epochs run and the wall time.

    Args:
        X_train: training inputs (uint8 images are scaled to [0, 1]).
        y_train: integer or one-hot labels.
        X_val: validation inputs.
        y_val: validation labels.
        configs: list of `{"name", "l2", "dropout"}` mappings. Defaults to
            `None` (`LADDER`: none, light, moderate, heavy, very heavy).
        epochs: maximum epochs per config. Defaults to `50`.
        batch_size: batch size. Defaults to `64`.
        patience: early-stopping patience. Defaults to `5`.
        hidden_units: hidden widths of the MLP. Defaults to `(256, 128)`.
        learning_rate: Adam learning rate. Defaults to `1e-3`.
        min_val_acc: validation accuracy a config needs to be chosen for
            its gap. Defaults to `0.7`.
        seed: seed set before each config's training. Defaults to `None`.
        verbose: 0 silent, 1 prints each record and the table. Defaults to
            `0`.

    Returns:
        A dict: `records` (list of dicts with `name`, `l2`, `dropout`,
        `train_acc`, `val_acc`, `gap`, `epochs`, `time_s`), `best` (one of
        the records), `selection` (why it was chosen) and `table` (plain
        text, the best marked with `*`).

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x_train, y_train = rng.random((32, 8)), rng.integers(0, 2, 32)
    >>> x_val, y_val = rng.random((16, 8)), rng.integers(0, 2, 16)
    >>> configs = [{"name": "none", "l2": 0.0, "dropout": 0.0},
    ...            {"name": "heavy", "l2": 1e-3, "dropout": 0.5}]
    >>> result = progressive_regularization_search(
    ...     x_train, y_train, x_val, y_val, configs=configs, epochs=1,
    ...     hidden_units=(8,))
    >>> print(result["table"])
    Config ...
    """
    configs = _check_configs(LADDER if configs is None else configs)
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    patience = check_int("patience", patience, 0)
    learning_rate = check_float("learning_rate", learning_rate, 0.0,
                                low_inclusive=False)
    min_val_acc = check_float("min_val_acc", min_val_acc, 0.0, 1.0,
                              high_inclusive=True)
    seed = check_seed("seed", seed)
    X_train, X_val = to_float_images(X_train), to_float_images(X_val)
    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    sparse = y_train.ndim == 1 or y_train.shape[-1] == 1
    if sparse:
        num_classes = int(max(integer_labels(y_train).max(),
                              integer_labels(y_val).max())) + 1
    else:
        num_classes = y_train.shape[-1]
    loss = ("sparse_categorical_crossentropy" if sparse
            else "categorical_crossentropy")
    records: list[dict[str, Any]] = []
    for config in configs:
        if seed is not None:
            keras.utils.set_random_seed(seed)
        model = build_search_mlp(X_train.shape[1:], num_classes,
                                 config["l2"], config["dropout"],
                                 hidden_units)
        model.compile(keras.optimizers.Adam(learning_rate), loss,
                      metrics=["accuracy"])
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True)
        start = time.perf_counter()
        history = model.fit(X_train, y_train, validation_data=(X_val, y_val),
                            epochs=epochs, batch_size=batch_size,
                            callbacks=[stop], verbose=0).history
        record = dict(config)
        record["train_acc"] = float(max(history["accuracy"]))
        record["val_acc"] = float(max(history["val_accuracy"]))
        record["gap"] = record["train_acc"] - record["val_acc"]
        record["epochs"] = len(history["accuracy"])
        record["time_s"] = time.perf_counter() - start
        records.append(record)
        if verbose:
            print(f"{record['name']}: train {record['train_acc']:.4f}, "
                  f"val {record['val_acc']:.4f}, gap {record['gap']:+.4f}",
                  flush=True)
    best, reason = select_best(records, min_val_acc)
    table = format_table(records, best)
    if verbose:
        print(table)
        print(f"Best: {best['name']} ({reason})")
    return {"records": records, "best": best, "selection": reason,
            "table": table}
