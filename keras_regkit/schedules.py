"""Learning-rate schedules the presets name, built from Keras's own."""

from __future__ import annotations

from typing import Any

import keras

from keras_regkit._choices import LR_SCHEDULES
from keras_regkit._registry import register
from keras_regkit._typing import Tensor
from keras_regkit._validation import check_choice, check_int, check_non_negative


@register
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to a peak, then linear decay to `end_learning_rate`.

    The triangular ("one-cycle") schedule of fast CIFAR-10 recipes.

    Args:
        peak_learning_rate: the rate reached at the end of warm-up.
        total_steps: steps of the whole schedule.
        warmup_steps: steps of the linear warm-up from
            `start_fraction * peak_learning_rate`. Defaults to `0`.
        start_fraction: where warm-up starts, as a fraction of the peak.
            Defaults to `0.0`.
        end_learning_rate: the rate at `total_steps` and after. Defaults to
            `0.0`.
    """

    def __init__(self, peak_learning_rate: float, total_steps: int,
                 warmup_steps: int = 0, start_fraction: float = 0.0,
                 end_learning_rate: float = 0.0) -> None:
        self.peak_learning_rate = check_non_negative(
            "peak_learning_rate", peak_learning_rate
        )
        self.total_steps = check_int("total_steps", total_steps, 1)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0,
                                      self.total_steps)
        self.start_fraction = check_non_negative("start_fraction",
                                                 start_fraction)
        self.end_learning_rate = check_non_negative("end_learning_rate",
                                                    end_learning_rate)

    def __call__(self, step: Tensor | int) -> Tensor:
        step = keras.ops.cast(step, "float32")
        peak = self.peak_learning_rate
        start = peak * self.start_fraction
        warm = float(max(self.warmup_steps, 1))
        warm_lr = start + (peak - start) * keras.ops.minimum(step / warm, 1.0)
        decay_len = float(max(self.total_steps - self.warmup_steps, 1))
        frac = keras.ops.clip((step - self.warmup_steps) / decay_len, 0.0, 1.0)
        decay_lr = peak + (self.end_learning_rate - peak) * frac
        return keras.ops.where(step < self.warmup_steps, warm_lr, decay_lr)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "start_fraction": self.start_fraction,
            "end_learning_rate": self.end_learning_rate,
        }


def make_learning_rate(
    name: str,
    learning_rate: float,
    steps_per_epoch: int | None = None,
    epochs: int | None = None,
    warmup_epochs: float = 0,
    min_learning_rate: float = 0.0,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Returns a float or a `LearningRateSchedule` for a preset's schedule.

    "constant" and "plateau" give the float (ReduceLROnPlateau then acts
    on it); the others need `steps_per_epoch` and `epochs` and fall back to
    the constant rate without them.

    Args:
        name: one of `LR_SCHEDULES`.
        learning_rate: the base (peak) learning rate.
        steps_per_epoch: optimizer steps per epoch. Defaults to `None`.
        epochs: epochs of the run. Defaults to `None`.
        warmup_epochs: epochs of linear warm-up. Defaults to `0`.
        min_learning_rate: the final rate of decaying schedules, Defaults
            to `0.0`.
    """
    check_choice("lr_schedule", name, LR_SCHEDULES)
    if name in ("constant", "plateau") or not steps_per_epoch or not epochs:
        return float(learning_rate)
    total = int(steps_per_epoch * epochs)
    warmup = min(int(steps_per_epoch * warmup_epochs), total)
    if name in ("warmup_linear", "onecycle"):
        return WarmupLinearDecay(
            learning_rate, total, warmup_steps=warmup, start_fraction=0.0,
            end_learning_rate=min_learning_rate,
        )
    alpha = min_learning_rate / learning_rate if learning_rate else 0.0
    if name == "cosine" or warmup == 0:
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=total, alpha=alpha
        )
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(total - warmup, 1), alpha=alpha,
        warmup_target=float(learning_rate), warmup_steps=warmup,
    )
