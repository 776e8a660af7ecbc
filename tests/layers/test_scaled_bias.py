"""Tests for ScaledBias: a bias with its own learning-rate multiplier."""

import keras
import numpy as np
import pytest

from keras_regkit.layers import ScaledBias
from tests.helpers import check_layer


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_check_layer(tmp_path):
    check_layer(
        ScaledBias, dict(lr_multiplier=16.0), (4, 5, 5, 3), tmp_path,
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=0,
    )


def test_adds_the_scaled_stored_bias_on_the_channel_axis():
    layer = ScaledBias(4.0)
    x = np.zeros((2, 3, 3, 5), "float32")
    layer.build(x.shape)
    layer.bias.assign(np.arange(5, dtype="float32"))
    out = _np(layer(x))
    np.testing.assert_allclose(out[1, 2, 0], 2.0 * np.arange(5), rtol=1e-6)
    np.testing.assert_allclose(_np(layer.effective_bias), 2.0 * np.arange(5))


def test_channels_first_axis():
    layer = ScaledBias(9.0, axis=1)
    x = np.zeros((2, 3, 4, 4), "float32")
    layer.build(x.shape)
    layer.bias.assign([1.0, 2.0, 3.0])
    out = _np(layer(x))
    np.testing.assert_allclose(out[0, :, 1, 1], [3.0, 6.0, 9.0], rtol=1e-6)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.85, True)])
def test_one_step_ratio_is_the_multiplier(momentum, nesterov):
    def one_step(multiplier):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        layer = ScaledBias(multiplier)
        model = keras.Model(inputs, layer(inputs))
        model.compile(keras.optimizers.SGD(0.01, momentum=momentum,
                                           nesterov=nesterov), "mse")
        x = np.ones((8, 3), "float32")
        model.train_on_batch(x, np.zeros((8, 3), "float32"))
        return _np(layer.effective_bias)

    np.testing.assert_allclose(one_step(64.0), 64.0 * one_step(1.0),
                               rtol=1e-5)


@pytest.mark.parametrize("kwargs, name", [
    ({"lr_multiplier": 0.0}, "lr_multiplier"),
    ({"lr_multiplier": -2.0}, "lr_multiplier"),
    ({"axis": 1.5}, "axis"),
    ({"axis": True}, "axis"),
])
def test_invalid_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        ScaledBias(**kwargs)


def test_unknown_channel_size_is_refused():
    with pytest.raises(ValueError, match="input_shape"):
        ScaledBias().build((None, None))
