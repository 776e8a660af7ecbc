"""Tests for StochasticDepth and drop_path."""

import numpy as np
import pytest

import keras

from keras_regkit.layers import StochasticDepth, drop_path
from tests.helpers import check_layer
from tests.helpers import random_images


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_check_layer(tmp_path):
    check_layer(
        StochasticDepth, dict(rate=0.2, seed=1), (4, 6, 6, 3), tmp_path,
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=1,
    )


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_each_sample_is_dropped_or_scaled_whole(rate):
    x = random_images(64) + 0.1  # no zeros in the branch
    out = _np(StochasticDepth(rate, seed=3)(x, training=True))
    ratio = (out / x).reshape(len(x), -1)
    np.testing.assert_allclose(ratio.max(axis=1), ratio.min(axis=1),
                               rtol=1e-6)
    per_sample = ratio[:, 0]
    dropped = per_sample == 0
    np.testing.assert_allclose(per_sample[~dropped], 1 / (1 - rate), rtol=1e-6)
    assert 0 < dropped.sum() < len(x)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
def test_dropped_fraction_and_mean(rate):
    # 5,000 samples: the dropped fraction's standard error is at most
    # 0.007, so 0.03 is over 4 standard errors.
    n = 5000
    out = _np(drop_path(np.ones((n, 3, 2), "float32"), rate, seed=11))
    dropped = np.all(out.reshape(n, -1) == 0, axis=1)
    assert abs(dropped.mean() - rate) < 0.03
    # Mean preserved: standard error sqrt(rate / (1 - rate) / n) <= 0.018.
    assert abs(out.mean() - 1.0) < 0.06


def test_without_scale_by_keep_kept_samples_are_unchanged():
    x = random_images(64) + 0.1
    out = _np(drop_path(x, 0.5, seed=2, scale_by_keep=False))
    kept = np.any(out.reshape(len(x), -1) != 0, axis=1)
    np.testing.assert_array_equal(out[kept], x[kept])
    assert np.all(out[~kept] == 0)
    assert 0 < kept.sum() < len(x)


@pytest.mark.parametrize("shape", [(64, 5), (64, 3, 4), (64, 4, 4, 2)])
def test_mask_is_per_sample_for_any_rank(shape):
    out = _np(drop_path(np.ones(shape, "float32"), 0.5, seed=1))
    flat = out.reshape(shape[0], -1)
    assert np.all(flat.min(axis=1) == flat.max(axis=1))
    assert set(np.unique(flat)) == {0.0, 2.0}


def test_residual_block_in_a_model():
    x = random_images(8)
    inputs = keras.Input((32, 32, 3))
    branch = keras.layers.Conv2D(3, 3, padding="same", name="branch")(inputs)
    outputs = inputs + StochasticDepth(0.5, seed=4)(branch)
    model = keras.Model(inputs, outputs)
    conv = _np(model.get_layer("branch")(x))
    # Inference: the plain residual sum.
    np.testing.assert_allclose(model.predict(x, verbose=0), x + conv,
                               rtol=1e-5, atol=1e-5)
    # Training: per sample either the shortcut alone or x + 2 * branch.
    train = _np(model(x, training=True))
    for got, xi, ci in zip(train, x, conv):
        assert (np.allclose(got, xi, atol=1e-5)
                or np.allclose(got, xi + 2 * ci, atol=1e-4))


def test_identity_at_inference():
    x = random_images(8)
    layer = StochasticDepth(0.5, seed=1)
    np.testing.assert_array_equal(_np(layer(x)), x)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x)


def test_zero_rate_is_identity_in_training():
    x = random_images(8)
    np.testing.assert_array_equal(
        _np(StochasticDepth(0.0)(x, training=True)), x
    )


def test_same_seed_same_masks():
    x = np.ones((32, 4), "float32")
    a = StochasticDepth(0.5, seed=9)
    b = StochasticDepth(0.5, seed=9)
    first = _np(a(x, training=True))
    np.testing.assert_array_equal(first, _np(b(x, training=True)))
    # The generator advances: the next draw differs.
    assert not np.array_equal(first, _np(a(x, training=True)))


@pytest.mark.requires_tensorflow
def test_works_in_tf_data_map():
    import tensorflow as tf

    layer = StochasticDepth(0.5, seed=4)

    def apply(batch):
        return layer(batch, training=True)

    x = np.ones((64, 8), "float32")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(64).map(apply)
    out = next(iter(ds)).numpy()
    assert set(np.unique(out)) == {0.0, 2.0}
    assert 0.3 < np.mean(out[:, 0] == 0) < 0.7


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.1"])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="argument `rate`"):
        StochasticDepth(rate)


def test_invalid_seed():
    with pytest.raises(ValueError, match="argument `seed`"):
        StochasticDepth(0.1, seed=1.5)


def test_invalid_scale_by_keep():
    with pytest.raises(ValueError, match="argument `scale_by_keep`"):
        StochasticDepth(0.1, scale_by_keep="yes")
