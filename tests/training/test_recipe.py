"""The preset's optimizer and compile step (keras_regkit.training.recipe)."""

import keras
import numpy as np
import pytest

from keras_regkit.models.presets import get_preset
from keras_regkit.optimizers import LookaheadOptimizer
from keras_regkit.optimizers import MuonSGD
from keras_regkit.training.recipe import MUON_MOMENTUM
from keras_regkit.training.recipe import compile_for_preset
from keras_regkit.training.recipe import make_optimizer


def _conv_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs)


def test_each_optimizer_name_gives_its_keras_optimizer():
    sgd = make_optimizer(get_preset("fast", optimizer="sgd"), 0.5)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert not isinstance(sgd, MuonSGD)
    assert (sgd.momentum, sgd.nesterov) == (0.85, True)
    assert sgd.weight_decay == pytest.approx(0.0089)
    adamw = make_optimizer(get_preset("medium"), 1e-3)
    assert isinstance(adamw, keras.optimizers.AdamW)
    assert adamw.weight_decay == pytest.approx(0.05)
    preset = get_preset("fast", muon_learning_rate=0.3)
    muon = make_optimizer(preset, 0.5)
    assert isinstance(muon, MuonSGD)
    assert (muon.momentum, muon.nesterov) == (0.85, True)
    # The filters' rate is a ratio of the schedule's: 0.3 at its peak 1.5.
    assert muon.muon_lr_ratio == pytest.approx(0.3 / 1.5)
    assert muon.muon_momentum == MUON_MOMENTUM
    # The L2 mode puts the penalty in the kernels, not in the optimizer.
    coupled = make_optimizer(get_preset("fast", weight_decay_mode="l2"), 0.5)
    assert coupled.weight_decay is None


def _one_step(muon_learning_rate):
    """The conv and head weights after one step of `fast` with Muon."""
    preset = get_preset("fast", optimizer="sgd_muon", lookahead=False,
                        lr_schedule="constant", weight_decay=0.0,
                        min_learning_rate=0.0, learning_rate=0.1,
                        muon_learning_rate=muon_learning_rate)
    model = compile_for_preset(_conv_model(), preset, 3)
    before = keras.ops.convert_to_numpy(model.get_layer("conv").kernel)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 6, 2)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    model.train_on_batch(x, y)
    after = keras.ops.convert_to_numpy(model.get_layer("conv").kernel)
    head = keras.ops.convert_to_numpy(model.get_layer("head").kernel)
    return before, after, head


def test_muon_learning_rate_sets_the_filters_step_alone():
    before, after_1, head_1 = _one_step(0.05)
    _, after_2, head_2 = _one_step(0.1)
    # Each Muon step first rescales the filters to norm sqrt(filters), then
    # subtracts the rate times the orthogonalized momentum: the distance
    # from the rescaled filters is proportional to the rate.
    rescaled = before * np.sqrt(4) / np.linalg.norm(before)
    step_1 = np.linalg.norm(rescaled - after_1)
    step_2 = np.linalg.norm(rescaled - after_2)
    assert step_1 > 1e-3
    # float32 arithmetic on order-1 values: far below 1e-4 relative.
    assert step_2 / step_1 == pytest.approx(2.0, rel=1e-4)
    # The head takes the preset's SGD step, whatever the filters' rate.
    np.testing.assert_allclose(head_1, head_2, rtol=1e-5, atol=1e-7)


def test_lookahead_in_the_optimizer_needs_the_run_length():
    preset = get_preset("fast")
    with pytest.raises(ValueError, match="`steps_per_epoch`.*lookahead="):
        compile_for_preset(_conv_model(), preset, 3, lookahead="optimizer")
    model = compile_for_preset(_conv_model(), preset, 3, steps_per_epoch=7,
                               epochs=4, lookahead="optimizer")
    assert isinstance(model.optimizer, LookaheadOptimizer)
    assert model.optimizer.total_steps == 28
    with pytest.raises(ValueError, match="`lookahead`.*'callback'"):
        compile_for_preset(_conv_model(), preset, 3, lookahead="inside")
