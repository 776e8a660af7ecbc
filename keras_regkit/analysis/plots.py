"""Training-curve plots written to PNG files.

Figures are `matplotlib.figure.Figure` objects made outside pyplot: saving
renders them with Agg, nothing opens a window, the global matplotlib
backend is left alone, and a figure is freed when no longer referenced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from keras_regkit._atomic import atomic_write
from keras_regkit._typing import StrPath

if TYPE_CHECKING:
    import keras

# A Keras History, or its `history` dict: per-epoch lists by metric name.
HistoryLike: TypeAlias = (
    "keras.callbacks.History | Mapping[str, Sequence[float]]")

# The reference recipe's dictionaries use train_loss / train_acc; Keras uses loss /
# accuracy. Each metric lists the keys accepted for it, preferred first.
_KEYS = {
    "loss": ("loss", "train_loss"),
    "val_loss": ("val_loss",),
    "acc": ("accuracy", "acc", "train_acc", "sparse_categorical_accuracy",
            "categorical_accuracy"),
    "val_acc": ("val_accuracy", "val_acc", "val_sparse_categorical_accuracy",
                "val_categorical_accuracy"),
}


def new_figure(figsize: tuple[float, float], dpi: float = 100) -> Figure:
    """A Figure outside pyplot: no window, freed when no longer referenced."""
    return Figure(figsize=figsize, dpi=dpi)


def save_figure(fig: Figure, path: StrPath) -> StrPath:
    """Writes `fig` as a PNG of exactly figsize x dpi pixels, atomically."""
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    return path


def history_dict(history: HistoryLike) -> dict[str, Any]:
    """Returns the metrics dict of a Keras History or a plain mapping."""
    data = getattr(history, "history", history)
    if not isinstance(data, dict):
        raise TypeError(
            "Invalid value received for argument `history`. Expected a Keras "
            f"History or a dict of lists. Received: history={history!r}"
        )
    return data


def _pick(data: Mapping[str, Sequence[float]],
          name: str) -> list[float] | None:
    for key in _KEYS[name]:
        if data.get(key):
            return list(data[key])
    return None


def fit_verdict(train_acc: float, val_acc: float, gap_threshold: float = 0.1,
                underfit_acc: float = 0.7) -> str:
    """The reference recipe's reading of final accuracies.

    One of "overfitting", "underfitting" or "good fit".
    """
    gap = train_acc - val_acc
    if gap > gap_threshold:
        return "overfitting"
    if val_acc < underfit_acc:
        return "underfitting"
    return "good fit"


def plot_training_diagnostics(history: HistoryLike,
                              path: StrPath | None = None,
                              title: str | None = None,
                              verbose: bool = False) -> Figure:
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


def plot_validation_curves(histories: Mapping[str, HistoryLike],
                           path: StrPath | None = None,
                           title: str | None = None) -> Figure:
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
