"""WeightStatsMonitor: per-layer weight statistics, the over-regularization
signals, logged every epoch."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import numpy.typing as npt

from keras_regkit._registry import register
from keras_regkit._typing import Logs
from keras_regkit._walk import walk_layers
from keras_regkit._validation import check_float
from keras_regkit._validation import check_int
from keras_regkit._validation import check_positive
from keras_regkit._validation import invalid

if TYPE_CHECKING:
    from typing_extensions import Self

STAT_NAMES = ("l2_norm", "mean_abs", "zero_fraction", "update_ratio")


def kernel_layers(
    model: keras.layers.Layer, names: Collection[str] | None = None,
) -> list[tuple[str, keras.Variable]]:
    """Returns `[(name, kernel_variable)]` for the layers owning a kernel."""
    found: list[tuple[str, keras.Variable]] = []
    seen_vars: set[int] = set()
    used: set[str] = set()
    for layer in walk_layers(model):
        if names is not None and layer.name not in names:
            continue
        try:
            kernel = getattr(layer, "kernel", None)
        except (AttributeError, ValueError):
            continue
        if not isinstance(kernel, keras.Variable) or id(kernel) in seen_vars:
            continue
        seen_vars.add(id(kernel))
        name, i = layer.name, 1
        while name in used:
            name, i = f"{layer.name}_{i}", i + 1
        used.add(name)
        found.append((name, kernel))
    return found


def weight_stats(weights: npt.ArrayLike, zero_tol: float,
                 previous: npt.ArrayLike | None = None) -> dict[str, float]:
    """Statistics of one weight array.

    Args:
        weights: the weight values (array-like).
        zero_tol: weights with `|w| < zero_tol` count as near zero.
        previous: the same weight at the previous snapshot, or None.

    Returns:
        A dict with `l2_norm` (`||w||_2`), `mean_abs` (mean of `|w|`),
        `zero_fraction` (fraction of `|w| < zero_tol`) and `update_ratio`
        (`||w - previous|| / ||previous||`, NaN without `previous`).
    """
    w = np.asarray(weights, dtype="float64")
    stats = {
        "l2_norm": float(np.sqrt(np.sum(np.square(w)))),
        "mean_abs": float(np.mean(np.abs(w))) if w.size else 0.0,
        "zero_fraction": float(np.mean(np.abs(w) < zero_tol)) if w.size
        else 0.0,
        "update_ratio": float("nan"),
    }
    if previous is not None:
        prev = np.asarray(previous, dtype="float64")
        base = max(float(np.sqrt(np.sum(np.square(prev)))), 1e-12)
        stats["update_ratio"] = float(
            np.sqrt(np.sum(np.square(w - prev))) / base)
    return stats


def check_layer_names(name: str, value: Any) -> list[str] | None:
    """Checks None or a non-empty list of layer names; returns a list."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or (
            not value or not all(isinstance(n, str) for n in value)):
        raise invalid(name, value, "None or a non-empty list of layer names")
    return list(value)


def _optional_fraction(name: str, value: Any) -> float | None:
    if value is None:
        return None
    return check_float(name, value, 0.0, 1.0, high_inclusive=True)


def _write_scalars(writer: Any, scalars: Mapping[str, float],
                   step: int) -> None:
    if hasattr(writer, "add_scalar"):  # torch / tensorboardX writers
        for key, value in scalars.items():
            writer.add_scalar(key, value, step)
    else:  # a tf.summary writer; TensorFlow is loaded since one exists
        tf = sys.modules["tensorflow"]
        with writer.as_default():
            for key, value in scalars.items():
                tf.summary.scalar(key, value, step=step)
    writer.flush()


@register
class WeightStatsMonitor(keras.callbacks.Callback):
    """Logs per-layer weight statistics: the over-regularization signals.

    At every epoch end, for each layer with a `kernel` (Dense, Conv*,
    EinsumDense, wrapped layers) it adds to the epoch logs
    `weights/<layer>/l2_norm`, `weights/<layer>/mean_abs`,
    `weights/<layer>/zero_fraction` (`|w| < zero_tol`) and
    `weights/<layer>/update_ratio` (norm of this epoch's update over the
    norm of the weights at its start), plus the same four over all kernels
    together as `weights/<stat>`. Logs reach History, CSVLogger and Keras's
    TensorBoard callback placed after the monitor; with `writer` they are
    also written there directly. It warns once per fit when most weights
    are near zero or when a kernel's norm collapsed, the signs of too much
    L1/L2 or weight decay. (`fit(verbose=1)` prints every log key at epoch
    end; use `verbose=2` or `layers=` to keep the progress line short.)

    Args:
        zero_tol: positive threshold under which a weight counts as zero.
            Defaults to `1e-3`.
        layers: None for every kernel layer, or a list of layer names.
            Defaults to `None`.
        writer: None, a `tf.summary` file writer, or an object with
            `add_scalar(tag, value, step)` (PyTorch's SummaryWriter).
            Defaults to `None`.
        warn_zero_fraction: float in [0, 1]; warn when the overall
            near-zero fraction exceeds it, or None. Defaults to `0.5`.
        warn_norm_ratio: float in [0, 1]; warn when a kernel's norm falls
            below this fraction of its value at the start of training, or
            None. Defaults to `0.1`.
        verbose: 1 prints the overall statistics each epoch. Defaults to
            `0`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile("sgd", "mse")
    >>> x, y = np.ones((8, 4)), np.zeros((8, 2))
    >>> monitor = WeightStatsMonitor(zero_tol=1e-3)
    >>> history = model.fit(x, y, epochs=2, callbacks=[monitor], verbose=0)
    >>> len(history.history["weights/zero_fraction"])
    2
    """

    def __init__(
        self,
        zero_tol: float = 1e-3,
        layers: Sequence[str] | None = None,
        writer: Any = None,
        warn_zero_fraction: float | None = 0.5,
        warn_norm_ratio: float | None = 0.1,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        self.zero_tol = check_positive("zero_tol", zero_tol)
        self.layers = check_layer_names("layers", layers)
        if writer is not None and not (hasattr(writer, "add_scalar")
                                       or hasattr(writer, "as_default")):
            raise invalid("writer", writer, "None, a tf.summary writer or an "
                          "object with `add_scalar(tag, value, step)`")
        self.writer = writer
        self.warn_zero_fraction = _optional_fraction(
            "warn_zero_fraction", warn_zero_fraction)
        self.warn_norm_ratio = _optional_fraction(
            "warn_norm_ratio", warn_norm_ratio)
        self.verbose = check_int("verbose", verbose, 0, 1)
        self._kernels: list[tuple[str, keras.Variable]] = []
        self._previous: dict[str, np.ndarray] = {}
        self._initial_norms: dict[str, float] = {}
        self._warned: set[str] = set()

    def get_config(self) -> dict[str, Any]:
        return {
            "zero_tol": self.zero_tol, "layers": self.layers,
            "writer": None, "warn_zero_fraction": self.warn_zero_fraction,
            "warn_norm_ratio": self.warn_norm_ratio, "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._kernels = kernel_layers(self.model, self.layers)
        if not self._kernels:
            warnings.warn("WeightStatsMonitor found no layer with a kernel "
                          f"(layers={self.layers}); it logs nothing.",
                          stacklevel=2)
        self._initial_norms = {
            name: weight_stats(keras.ops.convert_to_numpy(k),
                               self.zero_tol)["l2_norm"]
            for name, k in self._kernels}
        self._warned = set()

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._previous = {name: keras.ops.convert_to_numpy(k).copy()
                          for name, k in self._kernels}

    def compute(self) -> dict[str, float]:
        """Returns the current `{log key: value}` statistics."""
        scalars: dict[str, float] = {}
        total: dict[str, float] = {"sq": 0.0, "abs": 0.0, "zero": 0.0,
                                   "n": 0, "dsq": 0.0, "psq": 0.0}
        for name, kernel in self._kernels:
            w = keras.ops.convert_to_numpy(kernel)
            stats = weight_stats(w, self.zero_tol, self._previous.get(name))
            for stat in STAT_NAMES:
                scalars[f"weights/{name}/{stat}"] = stats[stat]
            total["sq"] += stats["l2_norm"] ** 2
            total["abs"] += stats["mean_abs"] * w.size
            total["zero"] += stats["zero_fraction"] * w.size
            total["n"] += w.size
            if name in self._previous:
                prev = self._previous[name].astype("float64")
                total["dsq"] += float(np.sum(np.square(w - prev)))
                total["psq"] += float(np.sum(np.square(prev)))
        if total["n"]:
            scalars["weights/l2_norm"] = float(np.sqrt(total["sq"]))
            scalars["weights/mean_abs"] = total["abs"] / total["n"]
            scalars["weights/zero_fraction"] = total["zero"] / total["n"]
            scalars["weights/update_ratio"] = (
                float(np.sqrt(total["dsq"] / max(total["psq"], 1e-24)))
                if self._previous else float("nan"))
        return scalars

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if not self._kernels:
            return
        scalars = self.compute()
        if logs is not None:
            logs.update(scalars)
        if self.writer is not None:
            _write_scalars(self.writer, scalars, epoch)
        if self.verbose:
            print(f"WeightStatsMonitor epoch {epoch}: global norm "
                  f"{scalars['weights/l2_norm']:.4g}, near-zero "
                  f"{scalars['weights/zero_fraction']:.1%}, update ratio "
                  f"{scalars['weights/update_ratio']:.3g}")
        self._check(epoch, scalars)

    def _warn_once(self, key: str, epoch: int, message: str) -> None:
        self._warned.add(key)
        warnings.warn(f"Possible over-regularization at epoch {epoch}: "
                      f"{message}", stacklevel=3)

    def _check(self, epoch: int, scalars: Mapping[str, float]) -> None:
        zero = scalars["weights/zero_fraction"]
        if (self.warn_zero_fraction is not None and "zero" not in self._warned
                and zero > self.warn_zero_fraction):
            self._warn_once("zero", epoch, (
                f"{zero:.1%} of kernel weights are near zero (|w| < "
                f"{self.zero_tol:g}), above {self.warn_zero_fraction:.0%}. "
                "Consider less L1/L2, weight decay or dropout."))
        if self.warn_norm_ratio is None or "norm" in self._warned:
            return
        for name, start in self._initial_norms.items():
            now = scalars[f"weights/{name}/l2_norm"]
            if start > 0 and now < self.warn_norm_ratio * start:
                self._warn_once("norm", epoch, (
                    f"the kernel norm of layer `{name}` fell from {start:.4g} "
                    f"to {now:.4g} ({now / start:.1%} of its start). "
                    "Consider less L2 or weight decay."))
                return
