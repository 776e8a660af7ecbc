"""A one-line estimate of the time a run has left, for `regkit train`.

After the first epoch it prints how long that epoch took (compilation
included) and how long the remaining epochs would take at that pace; after
the second, which has no compilation in it, it prints the estimate again.
Later epochs print nothing: Keras's own per-epoch line carries the time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras


def format_seconds(seconds: float) -> str:
    """`"42 s"`, `"3 min 05 s"` or `"1 h 02 min"`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class RemainingTimeEstimate(keras.callbacks.Callback):
    """Prints the estimated time left after the first two epochs of a run.

    Args:
        print_fn: Called with each line. Defaults to `print` (flushed).
    """

    def __init__(self, print_fn: Callable[[str], object] | None = None,
                 ) -> None:
        super().__init__()
        self._print: Callable[[str], object] = print_fn or (
            lambda line: print(line, flush=True))
        self._start: float | None = None
        self._seen = 0

    def on_epoch_begin(self, epoch: int,
                       logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int,
                     logs: dict[str, Any] | None = None) -> None:
        if self._start is None or self._seen >= 2:
            return
        self._seen += 1
        took = time.perf_counter() - self._start
        left = self.params.get("epochs", epoch + 1) - (epoch + 1)
        if left <= 0:
            return
        note = ("first epoch, compilation included" if self._seen == 1
                else "at the second epoch's pace")
        self._print(
            f"epoch {epoch + 1} took {format_seconds(took)}; about "
            f"{format_seconds(took * left)} left for {left} more epoch"
            f"{'s' if left != 1 else ''} ({note}; early stopping may end "
            "the run sooner)")
