"""Learning-rate schedules named by the presets."""

import keras
import numpy as np
import pytest

from keras_regkit.schedules import LR_SCHEDULES
from keras_regkit.schedules import WarmupLinearDecay
from keras_regkit.schedules import make_learning_rate


def values(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(s)))
                     for s in steps])


def test_warmup_linear_decay_is_a_triangle():
    schedule = WarmupLinearDecay(0.4, total_steps=100, warmup_steps=20)
    got = values(schedule, [0, 10, 20, 60, 100, 150])
    np.testing.assert_allclose(got, [0.0, 0.2, 0.4, 0.2, 0.0, 0.0],
                               atol=1e-6)


def test_warmup_linear_decay_start_and_end_rates():
    schedule = WarmupLinearDecay(1.0, 10, warmup_steps=5, start_fraction=0.2,
                                 end_learning_rate=0.1)
    got = values(schedule, [0, 5, 10])
    np.testing.assert_allclose(got, [0.2, 1.0, 0.1], atol=1e-6)


def test_warmup_linear_decay_config_round_trip():
    schedule = WarmupLinearDecay(0.1, 50, warmup_steps=5)
    clone = WarmupLinearDecay.from_config(schedule.get_config())
    np.testing.assert_allclose(values(clone, range(0, 60, 7)),
                               values(schedule, range(0, 60, 7)))
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, WarmupLinearDecay)


@pytest.mark.parametrize("name", ["constant", "plateau"])
def test_constant_and_plateau_give_a_float(name):
    assert make_learning_rate(name, 0.01, 10, 5) == 0.01


def test_schedules_without_step_counts_fall_back_to_the_constant_rate():
    assert make_learning_rate("cosine", 0.01) == 0.01


def test_cosine_decays_to_the_minimum_over_the_run():
    schedule = make_learning_rate("cosine", 0.1, steps_per_epoch=10,
                                  epochs=5, min_learning_rate=0.001)
    got = values(schedule, [0, 25, 50])
    np.testing.assert_allclose(got, [0.1, 0.0505, 0.001], rtol=1e-4)


def test_warmup_cosine_rises_then_decays():
    schedule = make_learning_rate("warmup_cosine", 0.1, steps_per_epoch=10,
                                  epochs=10, warmup_epochs=2)
    got = values(schedule, [0, 10, 20, 60, 100])
    assert got[0] == pytest.approx(0.0, abs=1e-7)
    assert got[1] == pytest.approx(0.05, rel=1e-4)
    assert got[2] == pytest.approx(0.1, rel=1e-4)
    assert got[2] > got[3] > got[4]
    assert got[4] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", ["warmup_linear", "onecycle"])
def test_onecycle_is_the_triangle(name):
    schedule = make_learning_rate(name, 0.2, steps_per_epoch=10, epochs=10,
                                  warmup_epochs=2)
    assert isinstance(schedule, WarmupLinearDecay)
    assert (schedule.total_steps, schedule.warmup_steps) == (100, 20)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule"):
        make_learning_rate("exponential", 0.1, 10, 10)
    assert "cosine" in LR_SCHEDULES


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(peak_learning_rate=-1.0, total_steps=10), "peak_learning_rate"),
        (dict(peak_learning_rate=0.1, total_steps=0), "total_steps"),
        (dict(peak_learning_rate=0.1, total_steps=10, warmup_steps=11),
         "warmup_steps"),
    ],
)
def test_warmup_linear_decay_validates_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WarmupLinearDecay(**kwargs)
