"""The one "is this an improvement?" rule (keras_regkit.callbacks._monitor)."""

import math

import pytest

from keras_regkit.callbacks._monitor import Monitor
from keras_regkit.callbacks._monitor import infer_mode


@pytest.mark.parametrize("name, mode", [
    ("loss", "min"), ("val_loss", "min"), ("val_mean_squared_error", "min"),
    ("categorical_crossentropy", "min"), ("mae", "min"),
    ("overfit_gap", "min"), ("previous_loss", "min"),
    ("accuracy", "max"), ("val_accuracy", "max"), ("top5_accuracy", "max"),
    ("val_sparse_categorical_accuracy", "max"), ("acc", "max"),
    ("auc", "max"), ("val_precision", "max"), ("recall_1", "max"),
])
def test_auto_mode_is_inferred_from_the_name(name, mode):
    assert infer_mode(name) == mode
    assert Monitor(name).mode == mode


def test_a_name_that_says_neither_direction_needs_a_mode():
    with pytest.raises(ValueError, match="mode='min'.*mode='max'"):
        Monitor("learning_rate")
    assert Monitor("learning_rate", mode="min").mode == "min"


@pytest.mark.parametrize("mode, better, worse", [("min", 0.9, 1.1),
                                                 ("max", 1.1, 0.9)])
def test_min_and_max(mode, better, worse):
    monitor = Monitor("score", mode=mode)
    assert monitor.improved(better, 1.0)
    assert not monitor.improved(worse, 1.0)
    assert not monitor.improved(1.0, 1.0)  # a tie is no improvement
    assert monitor.worsened(worse, 1.0) and not monitor.worsened(better, 1.0)


def test_the_first_value_improves_without_a_baseline():
    assert Monitor("val_loss").improved(123.0)
    assert Monitor("val_loss").improved(float("nan"))
    assert Monitor("val_loss").improved(5.0, best=None)


@pytest.mark.parametrize("mode, best, inside, beyond", [
    ("min", 1.0, 0.95, 0.85), ("max", 0.5, 0.55, 0.65)])
def test_min_delta_is_the_change_that_counts(mode, best, inside, beyond):
    monitor = Monitor("score", mode=mode, min_delta=0.1)
    assert not monitor.improved(inside, best)
    assert monitor.improved(beyond, best)
    # The same margin decides whether a value got worse.
    assert not monitor.worsened(best + (best - inside), best)
    assert monitor.worsened(best + (best - beyond), best)


@pytest.mark.parametrize("mode, baseline, below, above", [
    ("max", 0.6, 0.55, 0.65), ("min", 0.6, 0.65, 0.55)])
def test_baseline_is_the_value_to_beat_before_any_best(mode, baseline,
                                                       below, above):
    monitor = Monitor("score", mode=mode, baseline=baseline)
    assert not monitor.improved(below)
    assert monitor.improved(above)
    # Once a best exists, the best is compared, not the baseline.
    assert monitor.improved(below, best=0.0 if mode == "max" else 1.0)


def test_nan_never_beats_a_best_and_is_ignored_in_best_of():
    monitor = Monitor("val_loss")
    assert not monitor.improved(float("nan"), 1.0)
    assert monitor.best_of([float("nan"), 0.7, 0.5, float("nan")]) == 0.5
    assert Monitor("accuracy").best_of([0.2, 0.9, 0.4]) == 0.9
    assert monitor.best_of([]) is None
    assert monitor.best_of([math.nan]) is None


@pytest.mark.parametrize("kwargs, argument", [
    ({"mode": "maximum"}, "mode"),
    ({"min_delta": -0.1}, "min_delta"),
    ({"baseline": "high"}, "baseline"),
    ({"baseline": float("inf")}, "baseline"),
    ({"monitor": ""}, "monitor"),
])
def test_invalid_arguments(kwargs, argument):
    kwargs = dict({"monitor": "val_loss"}, **kwargs)
    match = f"Invalid value received for argument `{argument}`"
    with pytest.raises(ValueError, match=match):
        Monitor(**kwargs)
