"""Training-curve plots written to PNG files.

Figures are `matplotlib.figure.Figure` objects made outside pyplot: saving
renders them with Agg, nothing opens a window, the global matplotlib
backend is left alone, and a figure is freed when no longer referenced.
"""

import io
import math

import keras
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# The seed's dictionaries use train_loss / train_acc; Keras uses loss /
# accuracy. Each metric lists the keys accepted for it, preferred first.
_KEYS = {
    "loss": ("loss", "train_loss"),
    "val_loss": ("val_loss",),
    "acc": ("accuracy", "acc", "train_acc", "sparse_categorical_accuracy",
            "categorical_accuracy"),
    "val_acc": ("val_accuracy", "val_acc", "val_sparse_categorical_accuracy",
                "val_categorical_accuracy"),
}


def new_figure(figsize, dpi=100):
    """A Figure outside pyplot: no window, freed when no longer referenced."""
    return Figure(figsize=figsize, dpi=dpi)


def save_figure(fig, path):
    """Writes `fig` as a PNG of exactly figsize x dpi pixels, atomically."""
    from keras_regkit._run_files import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def history_dict(history):
    """Returns the metrics dict of a Keras History or a plain mapping."""
    data = getattr(history, "history", history)
    if not isinstance(data, dict):
        raise TypeError(
            "Invalid value received for argument `history`. Expected a Keras "
            f"History or a dict of lists. Received: history={history!r}"
        )
    return data


def _pick(data, name):
    for key in _KEYS[name]:
        if data.get(key):
            return list(data[key])
    return None


def fit_verdict(train_acc, val_acc, gap_threshold=0.1, underfit_acc=0.7):
    """The seed's reading of final accuracies: overfitting/underfitting/good."""
    gap = train_acc - val_acc
    if gap > gap_threshold:
        return "overfitting"
    if val_acc < underfit_acc:
        return "underfitting"
    return "good fit"


def plot_training_diagnostics(history, path=None, title=None, verbose=False):
    """Loss and accuracy curves side by side, final validation loss marked.

    Args:
        history: a Keras History or a dict of per-epoch lists (`loss` /
            `train_loss`, `val_loss`, `accuracy` / `train_acc`,
            `val_accuracy` / `val_acc`).
        path: PNG file to write. Defaults to `None` (no file).
        title: figure title. Defaults to `None`.
        verbose: print the final accuracy gap and its verdict. Defaults to
            `False`.

    Returns:
        The matplotlib Figure.
    """
    data = history_dict(history)
    if not any(_pick(data, key) for key in _KEYS):
        known = ", ".join(k for keys in _KEYS.values() for k in keys)
        raise ValueError(
            "Invalid value received for argument `history`. Expected per-epoch "
            f"lists under at least one of: {known}. Received keys: "
            f"{sorted(data)}")
    fig = new_figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, (train_key, val_key), label in (
        (ax_loss, ("loss", "val_loss"), "loss"),
        (ax_acc, ("acc", "val_acc"), "accuracy"),
    ):
        train, val = _pick(data, train_key), _pick(data, val_key)
        if train:
            ax.plot(range(1, len(train) + 1), train, label=f"train {label}")
        if val:
            ax.plot(range(1, len(val) + 1), val, label=f"validation {label}")
        if val and label == "loss" and math.isfinite(val[-1]):
            ax.scatter([len(val)], [val[-1]], color="red", zorder=3,
                       label=f"final val loss {val[-1]:.3f}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if train or val:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    train_acc, val_acc = _pick(data, "acc"), _pick(data, "val_acc")
    if verbose and train_acc and val_acc:
        gap = train_acc[-1] - val_acc[-1]
        print(f"Final train-val accuracy gap: {gap:.4f} "
              f"({fit_verdict(train_acc[-1], val_acc[-1])})")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_validation_curves(histories, path=None, title=None):
    """Validation accuracy and loss of several runs on one figure.

    Args:
        histories: mapping of run name to a Keras History or dict of
            per-epoch lists (`val_accuracy` / `val_acc`, `val_loss`).
        path: PNG file to write (1000 x 400 pixels). Defaults to `None`.
        title: figure title. Defaults to `None`.

    Returns:
        The matplotlib Figure.
    """
    fig = new_figure(figsize=(10, 4))
    ax_acc, ax_loss = fig.subplots(1, 2)
    for name, history in histories.items():
        data = history_dict(history)
        for ax, key in ((ax_acc, "val_acc"), (ax_loss, "val_loss")):
            values = _pick(data, key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker=".",
                        label=name)
    for ax, label in ((ax_acc, "validation accuracy"),
                      (ax_loss, "validation loss")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def _fresh_model(model):
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


def learning_curve(model, X, y, X_val=None, y_val=None, train_sizes=None,
                   n_repeats=3, epochs=10, batch_size=64,
                   validation_fraction=0.2, seed=None):
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
        train_sizes: fractions in (0, 1]. Defaults to `None` (the seed's
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
    from keras_regkit._validation import check_float, check_int, check_seed
    from keras_regkit.analysis._common import integer_labels

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
    result = {k: [] for k in ("train_sizes", "train_mean", "train_std",
                              "val_mean", "val_std")}
    for fraction in sizes:
        n = max(1, int(round(len(X) * fraction)))
        train_scores, val_scores = [], []
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


def plot_learning_curves(model, X, y, X_val=None, y_val=None,
                         train_sizes=None, n_repeats=3, epochs=10,
                         batch_size=64, validation_fraction=0.2, seed=None,
                         path=None, title=None, verbose=False):
    """Learning curves: accuracy against training-set size, mean +- std.

    Trains as `learning_curve` does (arguments are the same) and plots the
    training and validation accuracy with their standard-deviation bands.
    With `verbose`, prints the final gap and the seed's verdict (gap > 0.1
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
    fig.learning_curve = curve
    if verbose:
        train, val = curve["train_mean"][-1], curve["val_mean"][-1]
        print(f"Final train-val accuracy gap: {train - val:.4f} "
              f"({fit_verdict(train, val)})")
    if path is not None:
        save_figure(fig, path)
    return fig
