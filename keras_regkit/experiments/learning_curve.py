"""Learning curves: accuracy against training-set size.

These functions train models (fresh ones for every subset), so they live
with the experiments; the plotting helpers they share come from
`keras_regkit.analysis.plots`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import keras
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from keras_regkit._typing import StrPath
from keras_regkit._validation import check_float, check_int, check_seed
from keras_regkit.analysis._common import integer_labels
from keras_regkit.analysis.plots import fit_verdict, new_figure, save_figure

# A compiled model (cloned for each training) or a function returning a new
# compiled model.
ModelSource: TypeAlias = keras.Model | Callable[[], keras.Model]


def _fresh_model(model: ModelSource) -> keras.Model:
    if isinstance(model, keras.Model):
        if not model.compiled:
            raise ValueError(
                "Invalid value received for argument `model`. Expected a "
                "compiled keras.Model or a function returning one. Received: "
                "an uncompiled model")
        clone = keras.models.clone_model(model)
        clone.compile_from_config(model.get_compile_config())
        return clone
    if callable(model):
        return model()
    raise ValueError(
        "Invalid value received for argument `model`. Expected a compiled "
        f"keras.Model or a function returning one. Received: model={model!r}")


def learning_curve(
    model: ModelSource, X: npt.ArrayLike, y: npt.ArrayLike,
    X_val: npt.ArrayLike | None = None, y_val: npt.ArrayLike | None = None,
    train_sizes: Sequence[float] | None = None, n_repeats: int = 3,
    epochs: int = 10, batch_size: int = 64,
    validation_fraction: float = 0.2, seed: int | None = None,
) -> dict[str, list[float]]:
    """Train and validation accuracy against the training-set size.

    For each fraction of the training set, a fresh model (a function's new
    model, or a re-initialized clone of a compiled model) is trained
    `n_repeats` times on random subsets of that size and scored in
    inference mode on its subset and on the validation set.

    Args:
        model: a function returning a new compiled model, or a compiled
            keras.Model (cloned, so never trained itself).
        X: training inputs.
        y: labels in the form the compiled loss expects.
        X_val: validation inputs. Defaults to `None` (hold out
            `validation_fraction` of `X`).
        y_val: validation labels. Defaults to `None`.
        train_sizes: fractions in (0, 1]. Defaults to `None` (the reference recipe's
            0.1, 0.2, ..., 1.0).
        n_repeats: trainings per size (for the std band). Defaults to `3`.
        epochs: epochs per training. Defaults to `10`.
        batch_size: batch size. Defaults to `64`.
        validation_fraction: share of `X` held out when `X_val` is None.
            Defaults to `0.2`.
        seed: seed of the subsets and of Keras. Defaults to `None`.

    Returns:
        A dict of lists: `train_sizes` (example counts), `train_mean`,
        `train_std`, `val_mean`, `val_std`.
    """
    n_repeats = check_int("n_repeats", n_repeats, 1)
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_seed("seed", seed)
    sizes = np.linspace(0.1, 1.0, 10) if train_sizes is None else train_sizes
    sizes = [check_float("train_sizes", float(s), 0.0, 1.0,
                         low_inclusive=False, high_inclusive=True)
             for s in sizes]
    X, y = np.asarray(X), np.asarray(y)
    rng = np.random.default_rng(seed)
    if X_val is None:
        validation_fraction = check_float(
            "validation_fraction", validation_fraction, 0.0, 1.0,
            low_inclusive=False)
        order = rng.permutation(len(X))
        n_val = max(1, int(round(len(X) * validation_fraction)))
        X_val, y_val = X[order[:n_val]], y[order[:n_val]]
        X, y = X[order[n_val:]], y[order[n_val:]]
    val_labels = integer_labels(y_val)
    result: dict[str, list[float]] = {
        k: [] for k in ("train_sizes", "train_mean", "train_std",
                        "val_mean", "val_std")}
    for fraction in sizes:
        n = max(1, int(round(len(X) * fraction)))
        train_scores: list[float] = []
        val_scores: list[float] = []
        for _ in range(n_repeats):
            if seed is not None:
                keras.utils.set_random_seed(int(rng.integers(2**31)))
            subset = rng.permutation(len(X))[:n]
            net = _fresh_model(model)
            net.fit(X[subset], y[subset], epochs=epochs,
                    batch_size=batch_size, verbose=0)
            for data, labels, scores in (
                    (X[subset], integer_labels(y[subset]), train_scores),
                    (X_val, val_labels, val_scores)):
                pred = net.predict(data, batch_size=256, verbose=0)
                scores.append(float((pred.argmax(-1) == labels).mean()))
        result["train_sizes"].append(n)
        for name, scores in (("train", train_scores), ("val", val_scores)):
            result[f"{name}_mean"].append(float(np.mean(scores)))
            result[f"{name}_std"].append(float(np.std(scores)))
    return result


def plot_learning_curves(
    model: ModelSource, X: npt.ArrayLike, y: npt.ArrayLike,
    X_val: npt.ArrayLike | None = None, y_val: npt.ArrayLike | None = None,
    train_sizes: Sequence[float] | None = None, n_repeats: int = 3,
    epochs: int = 10, batch_size: int = 64,
    validation_fraction: float = 0.2, seed: int | None = None,
    path: StrPath | None = None, title: str | None = None,
    verbose: bool = False,
) -> Figure:
    """Learning curves: accuracy against training-set size, mean +- std.

    Trains as `learning_curve` does (arguments are the same) and plots the
    training and validation accuracy with their standard-deviation bands.
    With `verbose`, prints the final gap and the reference recipe's verdict (gap > 0.1
    overfitting, else validation accuracy < 0.7 underfitting).

    Args:
        path: PNG file to write (800 x 500 pixels). Defaults to `None`.
        title: figure title. Defaults to `None`.
        verbose: print the verdict. Defaults to `False`.

    Returns:
        The matplotlib Figure; the numbers are in its `learning_curve`
        attribute (the dict `learning_curve` returns).
    """
    curve = learning_curve(model, X, y, X_val, y_val, train_sizes,
                           n_repeats, epochs, batch_size,
                           validation_fraction, seed)
    fig = new_figure(figsize=(8, 5))
    ax = fig.subplots()
    sizes = curve["train_sizes"]
    for name, label in (("train", "training accuracy"),
                        ("val", "validation accuracy")):
        mean = np.asarray(curve[f"{name}_mean"])
        std = np.asarray(curve[f"{name}_std"])
        ax.plot(sizes, mean, marker="o", label=label)
        ax.fill_between(sizes, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("training examples")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "Learning curves")
    fig.tight_layout()
    # An attribute of this figure only (Figure declares no such field).
    setattr(fig, "learning_curve", curve)
    if verbose:
        train, val = curve["train_mean"][-1], curve["val_mean"][-1]
        print(f"Final train-val accuracy gap: {train - val:.4f} "
              f"({fit_verdict(train, val)})")
    if path is not None:
        save_figure(fig, path)
    return fig
