"""build_mlp: the MLP the reference recipe named but never defined."""

import keras
import numpy as np
import pytest

from keras_regkit.models import PRESETS
from keras_regkit.models import build_mlp
from tests.helpers import random_batch


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_small_mlp_layers_and_parameter_count():
    model = build_mlp((32, 32, 3), 10, "small")
    assert model.name == "small_mlp"
    assert not model.compiled
    assert layer_types(model) == [
        "InputLayer", "Flatten",
        "Dense", "BatchNormalization", "Activation", "Dropout",
        "Dense", "BatchNormalization", "Activation", "Dropout",
        "Dense",
    ]
    expected = (32 * 32 * 3 * 256 + 4 * 256 + 256 * 128 + 4 * 128
                + 128 * 10 + 10)
    assert model.count_params() == expected
    rates = [l.rate for l in model.layers
             if isinstance(l, keras.layers.Dropout)]
    assert rates == [0.2, 0.2]


def test_output_is_a_distribution():
    x, _ = random_batch()
    model = build_mlp((32, 32, 3), 10, "small")
    probs = keras.ops.convert_to_numpy(model(x[:8], training=False))
    assert probs.shape == (8, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(probs > 0)


def test_flat_inputs_need_no_flatten():
    model = build_mlp((20,), 3, PRESETS["small"].replace(dense_units=(16,)))
    assert "Flatten" not in layer_types(model)
    assert model.output_shape == (None, 3)
    assert model.count_params() == 20 * 16 + 4 * 16 + 16 * 3 + 3


def test_no_hidden_layers_is_multinomial_regression():
    model = build_mlp((32, 32, 3), 10, PRESETS["small"].replace(dense_units=()))
    assert layer_types(model) == ["InputLayer", "Flatten", "Dense"]


def test_disabled_features_add_no_layers():
    preset = PRESETS["small"].replace(batch_norm=False, dropout_dense=0.0)
    model = build_mlp((32, 32, 3), 10, preset)
    assert layer_types(model) == [
        "InputLayer", "Flatten", "Dense", "Activation", "Dense", "Activation",
        "Dense",
    ]
    assert all(type(l) is not keras.layers.Layer for l in model.layers)
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert all(l.use_bias for l in dense)


def test_l2_only_in_l2_mode_and_ten_times_l2():
    decoupled = build_mlp((32, 32, 3), 10, "small")
    assert decoupled.losses == []
    preset = PRESETS["small"].replace(weight_decay_mode="l2")
    model = build_mlp((32, 32, 3), 10, preset)
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert [l.kernel_regularizer.l2 for l in dense[:-1]] == pytest.approx(
        [1e-4, 1e-4])
    assert dense[-1].kernel_regularizer is None
    assert len(model.losses) == 2
    zero = build_mlp((32, 32, 3), 10, preset.replace(l2=0.0))
    assert zero.losses == []


def test_max_norm_is_enforced_after_a_step():
    x, y = random_batch()
    preset = PRESETS["small"].replace(dense_units=(64,), max_norm=0.5)
    model = build_mlp((32, 32, 3), 10, preset)
    layer = model.get_layer("dense1")
    assert layer.kernel_constraint.max_value == 0.5
    model.compile(optimizer=keras.optimizers.SGD(1.0),
                  loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    norms = np.sqrt(np.sum(kernel ** 2, axis=0))
    assert norms.max() <= 0.5 + 1e-5
    assert norms.max() == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize(
    "input_shape, num_classes, match",
    [((), 10, "`input_shape`"), ((32, -1), 10, "`input_shape`"),
     ((8,), 1.5, "`num_classes`")],
)
def test_invalid_model_arguments(input_shape, num_classes, match):
    with pytest.raises(ValueError, match=match):
        build_mlp(input_shape, num_classes, "small")
