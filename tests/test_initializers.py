"""Tests for the PartialDirac initializer."""

import numpy as np
import pytest

import keras

from keras_regkit.initializers import PartialDirac
from tests.helpers import random_images
from tests.helpers import save_and_reload


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _conv(filters, kernel_size, initializer):
    return keras.layers.Conv2D(filters, kernel_size, padding="same",
                               use_bias=False,
                               kernel_initializer=initializer)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_first_filters_pass_the_input_channels_through(kernel_size):
    x = random_images(8)
    out = _np(_conv(16, kernel_size, PartialDirac(seed=0))(x))
    np.testing.assert_allclose(out[..., :3], x, rtol=0, atol=1e-6)
    # The other filters are not identities.
    assert np.abs(out[..., 3:4] - x[..., :1]).max() > 0.1


def test_fewer_filters_than_inputs_copy_the_first_channels():
    x = random_images(8)
    out = _np(_conv(2, 3, PartialDirac(seed=0))(x))
    np.testing.assert_allclose(out, x[..., :2], rtol=0, atol=1e-6)


def test_identity_filters_are_exact_deltas():
    kernel = _np(PartialDirac(seed=1)((3, 3, 4, 10)))
    expected = np.zeros((3, 3, 4, 4), "float32")
    expected[1, 1] = np.eye(4)
    np.testing.assert_array_equal(kernel[..., :4], expected)


def test_other_filters_follow_torch_default_init():
    # fan_in = 3 * 3 * 16 = 144: uniform in +-1/12. 64 - 16 = 48 filters,
    # 6,912 values: the largest is within 0.3% of the bound with
    # probability ~1 - exp(-20), the std within 3% of bound / sqrt(3).
    kernel = _np(PartialDirac(seed=2)((3, 3, 16, 64)))[..., 16:]
    bound = 1.0 / 12.0
    assert np.abs(kernel).max() <= bound
    assert np.abs(kernel).max() > 0.997 * bound
    assert abs(kernel.mean()) < 0.05 * bound
    np.testing.assert_allclose(kernel.std(), bound / np.sqrt(3), rtol=0.03)


@pytest.mark.parametrize(
    "base, value",
    [("zeros", 0.0), (keras.initializers.Constant(0.5), 0.5),
     ({"class_name": "Ones", "config": {}}, 1.0)],
)
def test_custom_base_fills_the_other_filters(base, value):
    kernel = _np(PartialDirac(base=base)((3, 3, 2, 5)))
    np.testing.assert_array_equal(kernel[..., 2:], value)
    assert kernel[1, 1, 1, 1] == 1.0 and kernel[1, 1, 0, 1] == 0.0


def test_seed_makes_it_reproducible():
    a = _np(PartialDirac(seed=3)((3, 3, 4, 8)))
    b = _np(PartialDirac(seed=3)((3, 3, 4, 8)))
    c = _np(PartialDirac(seed=4)((3, 3, 4, 8)))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[..., 4:] - c[..., 4:]).max() > 1e-3


@pytest.mark.parametrize(
    "make", [lambda: PartialDirac(seed=5),
             lambda: PartialDirac(base=keras.initializers.HeNormal(seed=1))])
def test_config_round_trip(make):
    init = make()
    config = init.get_config()
    clone = PartialDirac.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(_np(clone((3, 3, 2, 6))),
                                  _np(init((3, 3, 2, 6))))
    by_name = keras.initializers.get(keras.saving.serialize_keras_object(init))
    assert isinstance(by_name, PartialDirac)


def test_model_using_it_saves_and_reloads(tmp_path):
    x = random_images(4)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, _conv(8, 3, PartialDirac(seed=6))(inputs))
    reloaded = save_and_reload(model, tmp_path)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    init = reloaded.layers[-1].kernel_initializer
    assert isinstance(init, PartialDirac) and init.seed == 6


@pytest.mark.parametrize("shape", [(3, 3), (3, 16), (3, 3, 3, 3, 3)])
def test_rejects_shapes_that_are_not_conv2d_kernels(shape):
    with pytest.raises(ValueError, match="Conv2D kernels of shape"):
        PartialDirac()(shape)


@pytest.mark.parametrize("seed", [-1, 1.5])
def test_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="argument `seed`"):
        PartialDirac(seed=seed)


def test_rejects_seed_with_a_base():
    with pytest.raises(ValueError, match="None when `base` is given"):
        PartialDirac(base="he_uniform", seed=1)


@pytest.mark.parametrize("base", ["no_such_initializer", 3])
def test_rejects_unknown_base(base):
    with pytest.raises(ValueError, match="argument `base`"):
        PartialDirac(base=base)
