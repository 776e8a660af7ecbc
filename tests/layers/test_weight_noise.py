"""Tests for GaussianWeightNoise and gaussian_weight_noise."""

import numpy as np
import pytest

import keras

from keras_regkit.layers import GaussianWeightNoise
from keras_regkit.layers import gaussian_weight_noise
from tests.helpers import check_layer
from tests.helpers import random_images

to_numpy = keras.ops.convert_to_numpy

WRAPPED = [
    ("dense", lambda: keras.layers.Dense(10, activation="relu"),
     lambda x: x[:8].reshape(8, -1)),
    ("conv1d", lambda: keras.layers.Conv1D(4, 3, padding="causal"),
     lambda x: x[:8].reshape(8, 32, 96)),
    ("conv2d", lambda: keras.layers.Conv2D(6, 3, strides=2, padding="same"),
     lambda x: x[:8]),
    ("conv3d", lambda: keras.layers.Conv3D(3, 2),
     lambda x: x[:16].reshape(2, 8, 32, 32, 3)),
]
WRAPPED_IDS = [case[0] for case in WRAPPED]


@pytest.mark.parametrize("stddev", [0.01, 0.5])
def test_noise_statistics(stddev):
    kernel = np.full((100, 200), 3.0, dtype="float32")  # 20,000 weights
    noise = to_numpy(gaussian_weight_noise(kernel, stddev, seed=1)) - 3.0
    # Standard errors: mean stddev/141, std about stddev/200.
    assert abs(noise.mean()) < 0.03 * stddev
    assert abs(noise.std() / stddev - 1.0) < 0.03
    assert abs(np.mean(np.abs(noise) < stddev) - 0.6827) < 0.02


def test_noise_is_seeded():
    kernel = np.zeros((30, 30), dtype="float32")
    first = to_numpy(gaussian_weight_noise(kernel, 0.1, seed=4))
    np.testing.assert_array_equal(
        first, to_numpy(gaussian_weight_noise(kernel, 0.1, seed=4))
    )
    assert not np.allclose(
        first, to_numpy(gaussian_weight_noise(kernel, 0.1, seed=5))
    )


@pytest.mark.parametrize("case", WRAPPED, ids=WRAPPED_IDS)
def test_inference_equals_wrapped_layer(case):
    _, make, make_input = case
    x = make_input(random_images(16))
    inner = make()
    layer = GaussianWeightNoise(inner, stddev=0.1, seed=0)
    expected = to_numpy(inner(x))
    np.testing.assert_array_equal(to_numpy(layer(x)), expected)
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)),
                                  expected)


def test_layer_kernel_noise_std():
    # With identity inputs a bias-free Dense layer outputs its kernel.
    inner = keras.layers.Dense(100, use_bias=False, kernel_initializer="ones")
    layer = GaussianWeightNoise(inner, stddev=0.2, seed=3)
    eye = np.eye(120, dtype="float32")
    noise = to_numpy(layer(eye, training=True)) - 1.0  # 12,000 entries
    assert abs(noise.mean()) < 0.01
    assert abs(noise.std() / 0.2 - 1.0) < 0.03
    again = to_numpy(layer(eye, training=True)) - 1.0
    assert abs(np.corrcoef(noise.ravel(), again.ravel())[0, 1]) < 0.05


def test_training_equals_layer_with_noisy_kernel():
    x = random_images(8)
    inner = keras.layers.Conv2D(5, 3, strides=2, activation="relu")
    layer = GaussianWeightNoise(inner, stddev=0.05, seed=8)
    out = to_numpy(layer(x, training=True))
    noisy = gaussian_weight_noise(inner.kernel, 0.05,
                                  keras.random.SeedGenerator(8))
    reference = keras.layers.Conv2D(5, 3, strides=2, activation="relu")
    reference.build(x.shape)
    reference.set_weights([to_numpy(noisy), to_numpy(inner.bias)])
    np.testing.assert_allclose(out, to_numpy(reference(x)), rtol=1e-5,
                               atol=1e-5)
    assert not np.allclose(out, to_numpy(inner(x)), atol=1e-3)


def test_trainable_weights_are_wrapped_layers_own():
    inner = keras.layers.Dense(4)
    layer = GaussianWeightNoise(inner, stddev=0.1)
    layer.build((None, 6))
    assert len(layer.trainable_weights) == 2
    assert all(a is b for a, b in zip(layer.trainable_weights,
                                      inner.trainable_weights))
    assert layer.non_trainable_weights == []


def test_check_layer(tmp_path):
    layer = check_layer(
        GaussianWeightNoise,
        dict(layer=keras.layers.Dense(3), stddev=0.1, seed=2), (4, 5),
        tmp_path, expected_output_shape=(4, 3),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=1,
    )
    assert layer.get_config()["stddev"] == 0.1


@pytest.mark.requires_tensorflow
def test_in_tf_data_map():
    import tensorflow as tf

    x = random_images(8)
    inner = keras.layers.Conv2D(4, 3)
    layer = GaussianWeightNoise(inner, stddev=0.1, seed=4)
    layer.build(x.shape)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4)
    clean = np.concatenate(list(ds.map(layer).as_numpy_iterator()))
    np.testing.assert_array_equal(clean, to_numpy(inner(x)))
    noisy = ds.map(lambda batch: layer(batch, training=True))
    noisy = np.concatenate(list(noisy.as_numpy_iterator()))
    assert np.all(np.isfinite(noisy)) and not np.allclose(noisy, clean)


@pytest.mark.parametrize("stddev", [0.0, -0.1, float("nan")])
def test_rejects_non_positive_stddev(stddev):
    with pytest.raises(ValueError, match="argument `stddev`.*Received"):
        GaussianWeightNoise(keras.layers.Dense(2), stddev=stddev)


@pytest.mark.parametrize(
    "bad", [None, keras.layers.LayerNormalization(),
            keras.layers.SeparableConv2D(2, 3)],
    ids=["none", "layer_norm", "separable"],
)
def test_rejects_unsupported_layer(bad):
    with pytest.raises(TypeError, match="argument `layer`") as info:
        GaussianWeightNoise(bad, stddev=0.1)
    assert f"of type {type(bad).__name__}" in str(info.value)


def test_rejects_grouped_conv():
    with pytest.raises(ValueError, match="argument `layer`.*groups=3"):
        GaussianWeightNoise(keras.layers.Conv1D(3, 2, groups=3), stddev=0.1)


def test_rejects_negative_seed():
    with pytest.raises(ValueError, match="argument `seed`"):
        GaussianWeightNoise(keras.layers.Dense(2), stddev=0.1, seed=-3)
