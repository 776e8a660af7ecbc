"""The one "is this an improvement?" rule for callbacks that track a best.

In the spirit of Keras's `MonitorCallback` (`callbacks/monitor_callback.py`):
a monitored quantity is minimized or maximized (`mode`, which `"auto"`
infers from the metric's name), a change smaller than `min_delta` is no
improvement, and a `baseline` is the value to beat before any best exists.
It is a plain object rather than a base class, so a callback with its own
base (`TerminateOnNaN`, `Callback`) can hold one, and it needs no model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from keras_regkit._validation import check_choice
from keras_regkit._validation import check_float
from keras_regkit._validation import check_non_negative
from keras_regkit._validation import invalid

MODES = ("auto", "min", "max")

# Words that name quantities to maximize or minimize: a word of the metric's
# name (split at "_") matches when it starts or ends with one, so
# "top5_accuracy" is maximized and "categorical_crossentropy" minimized.
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "iou", "dice",
              "r2", "psnr", "ssim")
_MINIMIZED = ("loss", "error", "entropy", "mse", "mae", "mape", "msle",
              "hinge", "divergence", "ece", "gap")


def infer_mode(monitor: str) -> str:
    """`"min"` or `"max"` for a metric name, from what the name says.

    Args:
        monitor: a log key such as `"val_loss"` or `"top5_accuracy"`.

    Returns:
        `"max"` for accuracies and other scores, `"min"` for losses and
        errors.

    Raises:
        ValueError: when the name says neither.
    """
    words = re.split(r"[^a-z0-9]+", monitor.lower().removeprefix("val_"))
    for mode, known in (("max", _MAXIMIZED), ("min", _MINIMIZED)):
        if any(word.startswith(known) or word.endswith(known)
               for word in words if word):
            return mode
    raise ValueError(
        f"Cannot infer whether `{monitor}` should be minimized or maximized "
        "from its name. Pass mode='min' (losses, errors) or mode='max' "
        "(accuracies, scores).")


class Monitor:
    """Decides whether a monitored value improves on the best so far.

    Args:
        monitor: the log key watched. Defaults to `"val_loss"`.
        mode: `"min"`, `"max"` or `"auto"` (inferred from `monitor` by
            `infer_mode`). Defaults to `"auto"`.
        min_delta: non-negative amount by which a value must beat the best
            to count as an improvement. Defaults to `0.0`.
        baseline: the value to beat while there is no best yet, or `None`
            (then the first value improves). Defaults to `None`.

    Example:

    >>> monitor = Monitor("val_accuracy", min_delta=0.01)
    >>> monitor.mode
    'max'
    >>> monitor.improved(0.705, best=0.7)
    False
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto",
                 min_delta: float = 0.0,
                 baseline: float | None = None) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise invalid("monitor", monitor, "a non-empty metric name")
        check_choice("mode", mode, MODES)
        self.monitor = monitor
        self.mode = infer_mode(monitor) if mode == "auto" else mode
        self.min_delta = check_non_negative("min_delta", min_delta)
        self.baseline = (None if baseline is None
                         else check_float("baseline", baseline))

    def improved(self, value: float, best: float | None = None) -> bool:
        """Whether `value` beats `best` by more than `min_delta`.

        With `best=None` the value is compared with the baseline; without a
        baseline the first value always improves. NaN never beats a best.
        """
        reference = self.baseline if best is None else best
        if reference is None:
            return True
        if self.mode == "max":
            return value > reference + self.min_delta
        return value < reference - self.min_delta

    def worsened(self, value: float, reference: float) -> bool:
        """Whether `value` is worse than `reference` by over `min_delta`."""
        if self.mode == "max":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def best_of(self, values: Iterable[float]) -> float | None:
        """The best of `values` (NaN ignored), or `None` when there is none."""
        values = [v for v in values if not math.isnan(v)]
        if not values:
            return None
        return max(values) if self.mode == "max" else min(values)
