"""Tests for DropConnect, DropConnectDense and drop_connect_kernel."""

import numpy as np
import pytest

import keras

from keras_regkit.layers import DropConnect
from keras_regkit.layers import DropConnectDense
from keras_regkit.layers import drop_connect_kernel
from tests.helpers import check_layer
from tests.helpers import random_images
from tests.helpers import require_channels_first_conv

to_numpy = keras.ops.convert_to_numpy


def _images_1d(images):
    # Images read row by row: 32 steps of 96 features.
    return images[:8].reshape(8, 32, 96)


def _images_3d(images):
    # Images stacked as two 8-frame clips.
    return images[:16].reshape(2, 8, 32, 32, 3)


def _images_cf(images):
    return np.transpose(images[:8], (0, 3, 1, 2))


# (id, wrapped layer factory, input from a batch of 32 x 32 x 3 images)
CASES = [
    ("dense", lambda: keras.layers.Dense(12, activation="relu"),
     lambda x: x[:8].reshape(8, -1)),
    ("dense_rank3", lambda: keras.layers.Dense(5, use_bias=False),
     lambda x: x[:8].reshape(8, 32, 96)),
    ("conv1d_causal", lambda: keras.layers.Conv1D(
        6, 3, padding="causal", dilation_rate=2, activation="tanh"),
     _images_1d),
    ("conv2d", lambda: keras.layers.Conv2D(
        8, 3, strides=2, padding="same", activation="relu"),
     lambda x: x[:8]),
    ("conv2d_dilated", lambda: keras.layers.Conv2D(
        4, (3, 2), dilation_rate=(2, 1), padding="valid"),
     lambda x: x[:8]),
    ("conv2d_channels_first", lambda: keras.layers.Conv2D(
        4, 3, data_format="channels_first", padding="same"),
     _images_cf),
    ("conv3d", lambda: keras.layers.Conv3D(4, (2, 3, 3), strides=(1, 2, 2)),
     _images_3d),
]
CASE_IDS = [case[0] for case in CASES]
# One case per supported layer class.
BASIC = [case for case in CASES
         if case[0] in ("dense", "conv1d_causal", "conv2d", "conv3d")]


def test_kernel_drop_fraction_and_scaling():
    kernel = np.full((200, 100), 2.0, dtype="float32")  # 20,000 weights
    for rate in (0.1, 0.5, 0.8):
        dropped = to_numpy(drop_connect_kernel(kernel, rate, seed=3))
        zero = dropped == 0
        assert abs(zero.mean() - rate) < 0.02
        np.testing.assert_allclose(dropped[~zero], 2.0 / (1.0 - rate),
                                   rtol=1e-6)


def test_kernel_is_seeded_and_zero_rate_is_identity():
    kernel = np.ones((50, 40), dtype="float32")
    first = to_numpy(drop_connect_kernel(kernel, 0.5, seed=11))
    again = to_numpy(drop_connect_kernel(kernel, 0.5, seed=11))
    other = to_numpy(drop_connect_kernel(kernel, 0.5, seed=12))
    np.testing.assert_array_equal(first, again)
    assert np.mean(first != other) > 0.3  # independent masks differ ~50%
    np.testing.assert_array_equal(
        to_numpy(drop_connect_kernel(kernel, 0.0, seed=11)), kernel
    )


@pytest.mark.parametrize("case", BASIC, ids=[case[0] for case in BASIC])
def test_inference_equals_wrapped_layer(case):
    _, make, make_input = case
    x = make_input(random_images(16))
    inner = make()
    layer = DropConnect(inner, rate=0.5, seed=0)
    expected = to_numpy(inner(x))
    np.testing.assert_array_equal(to_numpy(layer(x)), expected)
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)),
                                  expected)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_training_equals_layer_with_masked_kernel(case):
    # The wrapper's first draw from SeedGenerator(7) is the mask a fresh
    # SeedGenerator(7) gives, so the result can be rebuilt by hand.
    name, make, make_input = case
    if name == "conv2d_channels_first":
        require_channels_first_conv()
    x = make_input(random_images(16))
    inner = make()
    layer = DropConnect(inner, rate=0.4, seed=7)
    out = to_numpy(layer(x, training=True))
    masked = drop_connect_kernel(
        inner.kernel, 0.4, keras.random.SeedGenerator(7)
    )
    reference = type(inner).from_config(inner.get_config())
    reference.build(x.shape)
    reference.set_weights([to_numpy(masked)] + inner.get_weights()[1:])
    np.testing.assert_allclose(out, to_numpy(reference(x)), rtol=1e-5,
                               atol=1e-5)
    assert not np.allclose(out, to_numpy(inner(x)), atol=1e-3)


def test_layer_drops_rate_of_kernel_entries():
    # With identity inputs a Dense layer outputs its (masked) kernel.
    inner = keras.layers.Dense(100, use_bias=False, kernel_initializer="ones")
    layer = DropConnect(inner, rate=0.3, seed=5)
    out = to_numpy(layer(np.eye(128, dtype="float32"), training=True))
    assert out.size >= 10_000
    zero = out == 0
    assert abs(zero.mean() - 0.3) < 0.02
    np.testing.assert_allclose(out[~zero], 1.0 / 0.7, rtol=1e-6)
    second = to_numpy(layer(np.eye(128, dtype="float32"), training=True))
    assert np.mean((second == 0) != zero) > 0.2  # a fresh mask every call


def test_mean_output_preserved():
    x = random_images(16)
    inner = keras.layers.Conv2D(
        4, 3, kernel_initializer=keras.initializers.RandomUniform(0.0, 1.0)
    )
    layer = DropConnect(inner, rate=0.5, seed=2)
    clean = to_numpy(inner(x)).mean()
    noisy = np.mean([to_numpy(layer(x, training=True)).mean()
                     for _ in range(30)])
    # Without the 1 / (1 - rate) scaling the ratio would be 0.5.
    assert abs(noisy / clean - 1.0) < 0.05


def test_trainable_weights_are_wrapped_layers_own():
    inner = keras.layers.Conv2D(3, 3)
    layer = DropConnect(inner, rate=0.2, seed=0)
    layer.build((None, 8, 8, 3))
    assert len(layer.trainable_weights) == len(inner.trainable_weights) == 2
    for ours, theirs in zip(layer.trainable_weights, inner.trainable_weights):
        assert ours is theirs
    assert layer.non_trainable_weights == []
    assert len(layer.non_trainable_variables) == 1  # the seed state only


def test_check_layer_wrapper(tmp_path):
    layer = check_layer(
        DropConnect, dict(layer=keras.layers.Conv2D(5, 3), rate=0.3, seed=1),
        (2, 8, 8, 3), tmp_path, expected_output_shape=(2, 6, 6, 5),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=1,
    )
    assert layer.get_config()["rate"] == 0.3


def test_check_layer_dense_convenience(tmp_path):
    layer = check_layer(
        DropConnectDense, dict(units=7, rate=0.25, activation="relu", seed=3),
        (4, 12), tmp_path, expected_output_shape=(4, 7),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=1,
    )
    config = layer.get_config()
    assert (config["units"], config["rate"], config["seed"]) == (7, 0.25, 3)
    assert config["activation"] == "relu"


def test_dense_convenience_semantics():
    layer = DropConnectDense(100, rate=0.4, use_bias=False,
                             kernel_initializer="ones", seed=9)
    eye = np.eye(128, dtype="float32")
    np.testing.assert_array_equal(to_numpy(layer(eye)), np.ones((128, 100)))
    out = to_numpy(layer(eye, training=True))
    assert abs(np.mean(out == 0) - 0.4) < 0.02
    np.testing.assert_allclose(out[out != 0], 1.0 / 0.6, rtol=1e-6)


@pytest.mark.requires_tensorflow
def test_in_tf_data_map():
    import tensorflow as tf

    x = random_images(8)
    inner = keras.layers.Conv2D(4, 3, kernel_initializer="ones")
    layer = DropConnect(inner, rate=0.5, seed=4)
    layer.build(x.shape)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4)
    clean = np.concatenate(list(ds.map(layer).as_numpy_iterator()))
    np.testing.assert_array_equal(clean, to_numpy(inner(x)))
    noisy = ds.map(lambda batch: layer(batch, training=True))
    noisy = np.concatenate(list(noisy.as_numpy_iterator()))
    assert noisy.shape == clean.shape
    assert np.all(np.isfinite(noisy)) and not np.allclose(noisy, clean)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rejects_rate_outside_unit_interval(rate):
    with pytest.raises(ValueError, match="argument `rate`.*Received: rate="):
        DropConnect(keras.layers.Dense(2), rate=rate)
    with pytest.raises(ValueError, match="argument `rate`"):
        DropConnectDense(2, rate=rate)


@pytest.mark.parametrize(
    "bad",
    ["dense", keras.layers.Dropout(0.5), keras.layers.DepthwiseConv2D(3),
     keras.layers.Conv2DTranspose(2, 3)],
    ids=["string", "dropout", "depthwise", "transpose"],
)
def test_rejects_unsupported_layer(bad):
    with pytest.raises(TypeError, match="argument `layer`.*Dense, Conv1D"
                       ) as info:
        DropConnect(bad, rate=0.2)
    assert f"of type {type(bad).__name__}" in str(info.value)


def test_rejects_grouped_conv():
    with pytest.raises(ValueError, match="argument `layer`.*groups=2"):
        DropConnect(keras.layers.Conv2D(4, 3, groups=2), rate=0.2)


def test_rejects_negative_seed():
    with pytest.raises(ValueError, match="argument `seed`"):
        DropConnect(keras.layers.Dense(2), rate=0.2, seed=-1)


def test_dense_convenience_rejects_bad_units():
    with pytest.raises(ValueError, match="argument `units`"):
        DropConnectDense(0, rate=0.2)
